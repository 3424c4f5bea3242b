"""A golden record of day closes: a seeded, varied stream of a few hundred accounts, scored batch by batch.

The stream is generated here (stdlib ``random`` only, so it does not move when the demo's simulators do): usage
with drops, silences and growth, key and other features, API calls, seat changes, tickets (urgent, escalated,
resolved before their opening arrives), CSAT and NPS, sign-ups, milestones, churn and renewal, events a few
hours to two weeks late, and profiles of every segment. ``golden_digests`` folds it through ``evaluate_account``
in random batches, with idle sweeps by a clock and records written and read back as the scorer stores them, and
hashes everything each account produced (every close's score, components, band and risk reading; every signal;
every tip; the final stored record) into one digest per account.

    .venv/bin/python -m tests.support.day_close_golden --record   # writes tests/unit/data/day_close_golden.json
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from services.scorer.app import scoring_config
from services.scorer.decode import ScorerEvent, decode_scorer_event
from services.scorer.evaluate import AccountRecord, Evaluation, ScoringConfig, evaluate_account
from services.scorer.layouts import DAY_LAYOUTS
from services.scorer.metrics import WindowMetrics
from services.scorer.record_rows import record_from_row, record_to_row
from services.scorer.risk_model import default_model_path, load_model
from services.scorer.scoring import HealthScore
from services.scorer.settings import ScorerSettings
from shared.accounts import AccountProfile, LifecycleStage, TouchTier

GOLDEN_PATH = Path(__file__).parents[1] / "unit" / "data" / "day_close_golden.json"
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 110
FEATURES = ("dashboards", "reports", "automation", "exports", "alerts", "sso", "billing", "search")
PLANS = ("starter", "growth", "enterprise", "custom", None)


def golden_config() -> ScoringConfig:
    """The scorer's own configuration: the packaged scorecard (segments, key features) and risk model."""
    return scoring_config(ScorerSettings(), load_model(default_model_path()))


def _profile(aid: str, rng: random.Random, first_day: date) -> AccountProfile | None:
    if rng.random() < 0.15:
        return None
    stage = rng.choice(list(LifecycleStage)[:4])
    return AccountProfile(
        account_id=aid,
        name=aid,
        plan=rng.choice(PLANS),
        seats_purchased=rng.choice([None, 0, 3, 10, 25, 60]),
        touch_tier=rng.choice(list(TouchTier)),
        lifecycle_stage=stage,
        renewal_date=first_day + timedelta(days=rng.randrange(10, 160)) if rng.random() < 0.7 else None,
        created_date=first_day - timedelta(days=rng.randrange(0, 400)) if rng.random() < 0.6 else None,
    )


class GoldenAccount:
    """One account's events as (arrival time, JSON body), with a usage level that drifts, drops and recovers."""

    def __init__(self, index: int) -> None:
        self.rng = rng = random.Random(f"golden:{index}")
        self.aid = f"g{index:04d}"
        self.first = rng.randrange(0, 40) if rng.random() < 0.5 else 0
        self.users = rng.randrange(1, 16)
        self.api = rng.random() < 0.3
        # whole-number figures are what most products send (and what the rolling sums add exactly); some send
        # fractional quantities or API calls that count in hundredths (the sums step aside while they are in reach)
        self.fractional = rng.random() < 0.3
        self.out: list[tuple[datetime, dict[str, Any]]] = []
        self.profile = _profile(self.aid, rng, (START + timedelta(days=self.first)).date())

    def add(self, at: datetime, late_hours: float = 0.0, **body: Any) -> None:
        n = len(self.out)
        event = {"event_id": f"{self.aid}-{n}", "account_id": self.aid, "occurred_at": at.isoformat(), **body}
        self.out.append((at + timedelta(hours=late_hours), event))

    def lateness(self) -> float:
        r = self.rng.random()
        return 0.0 if r < 0.8 else self.rng.uniform(0, 8) if r < 0.97 else self.rng.uniform(24, 14 * 24)

    def generate(self) -> list[tuple[datetime, dict[str, Any]]]:
        rng = self.rng
        level, silent_until, churn_day = 1.0, -1, None
        if rng.random() < 0.5:
            self.add(START + timedelta(days=self.first, hours=1), kind="lifecycle", action="signed_up")
        if rng.random() < 0.2:
            churn_day = rng.randrange(self.first + 30, DAYS + 20)
        for day in range(self.first, DAYS):
            level = min(2.5, max(0.0, level * rng.uniform(0.85, 1.15) + (0.3 if rng.random() < 0.03 else 0)))
            if rng.random() < 0.02:
                silent_until = day + rng.randrange(3, 20)
            if rng.random() < 0.03:
                level *= 0.3
            if day < silent_until or (churn_day is not None and day > churn_day):
                continue
            self._day(day, level)
            if churn_day == day:
                self.add(START + timedelta(days=day, hours=20), kind="lifecycle", action="churned")
                if rng.random() < 0.5:
                    churn_day = None  # it comes back
                    at = START + timedelta(days=day + rng.randrange(2, 15), hours=9)
                    self.add(at, kind="lifecycle", action="renewed")
        return self.out

    def _day(self, day: int, level: float) -> None:
        rng, base = self.rng, START + timedelta(days=day)
        for u in range(self.users):
            if rng.random() > min(0.95, 0.6 * level):
                continue
            at = base + timedelta(hours=rng.randrange(6, 20), minutes=rng.randrange(60))
            self.add(at, self.lateness(), kind="usage", action="login", user_id=f"{self.aid}-u{u}")
            for _ in range(rng.randrange(0, 4)):
                quantity = rng.choice([1, 1, 2, 3, 0.5, 2.25] if self.fractional else [1, 1, 2, 3])
                feature = rng.choice(FEATURES[: rng.randrange(1, len(FEATURES) + 1)])
                self.add(
                    at + timedelta(minutes=rng.randrange(1, 90)),
                    self.lateness(),
                    kind="usage",
                    action="feature_used",
                    user_id=f"{self.aid}-u{u}",
                    feature=feature,
                    quantity=quantity,
                )
        if self.api and rng.random() < 0.7:
            self.add(
                base + timedelta(hours=3),
                self.lateness(),
                kind="usage",
                action="api_calls",
                quantity=float(rng.randrange(1, 5000) * (1 if self.fractional else 100)),
            )
        if rng.random() < 0.02:
            self.add(base + timedelta(hours=10), kind="usage", action="seats_changed", seats=rng.randrange(1, 40))
        if rng.random() < 0.12:
            self._ticket(day, base)
        if rng.random() < 0.03:
            self.add(base + timedelta(hours=15), self.lateness(), kind="feedback", nps=rng.randrange(0, 11))
        if rng.random() < 0.02:
            self.add(base + timedelta(hours=16), kind="feedback", csat=rng.randrange(1, 6))
        if rng.random() < 0.01 and day > self.first + 5:
            self.add(base + timedelta(hours=11), kind="lifecycle", action="onboarding_milestone", milestone="first")

    def _ticket(self, day: int, base: datetime) -> None:
        rng, tid = self.rng, f"{self.aid}-t{day}"
        opened = base + timedelta(hours=rng.randrange(6, 18))
        priority = rng.choice(["low", "normal", "normal", "high", "urgent"])
        resolved = opened + timedelta(hours=rng.uniform(0.5, 120))
        early = rng.random() < 0.1  # the resolution arrives before the opening
        self.add(opened, 30.0 if early else 0.0, kind="ticket", action="opened", ticket_id=tid, priority=priority)
        if rng.random() < 0.2:
            self.add(opened + timedelta(hours=2), kind="ticket", action="escalated", ticket_id=tid)
        if rng.random() < 0.8:
            csat = rng.choice([None, 1, 2, 3, 4, 5])
            body = {"csat": csat} if csat else {}
            self.add(resolved, kind="ticket", action="resolved", ticket_id=tid, **body)


def golden_stream(accounts: int) -> tuple[list[ScorerEvent], dict[str, AccountProfile | None]]:
    """Every account's events interleaved in arrival order, decoded by the scorer's decoder; and the profiles."""
    arrivals: list[tuple[datetime, str, dict[str, Any]]] = []
    profiles: dict[str, AccountProfile | None] = {}
    for i in range(accounts):
        a = GoldenAccount(i)
        arrivals += [(t, e["event_id"], e) for t, e in a.generate()]
        profiles[a.aid] = a.profile
    arrivals.sort(key=lambda x: (x[0], x[1]))
    return [decode_scorer_event(json.dumps(e).encode()) for _, _, e in arrivals], profiles


def _persisted(record: AccountRecord, ev: Evaluation) -> AccountRecord:
    """The record as the next batch reads it back from account_health."""
    row = json.loads(json.dumps(record_to_row(record, ev.health), default=str))
    row["as_of"], row["closed_on"] = record.as_of, record.closed_on
    return record_from_row(SimpleNamespace(**row))


METRIC_FIELDS = tuple(f.name for f in fields(WindowMetrics))  # read by name: how the class is declared is free
# the stored record's days by name, not its JSON: a field the codec adds to the state does not change the digest
BUCKET_FIELDS = DAY_LAYOUTS.fields_of(1)  # the first stored layout: fixed for good, whatever is added later


def _health(h: HealthScore | None) -> Any:
    if h is None:
        return None
    parts = tuple((c.name, c.value, c.points, c.contribution, c.change_7d) for c in h.components)
    return (h.score, h.band, h.scorecard, h.missing, parts)


def _evaluation_lines(ev: Evaluation) -> list[str]:
    lines = [repr((c.day, _health(c.health), c.risk and (c.risk.probability, c.risk.explanation))) for c in ev.closes]
    lines += [s.model_dump_json() for s in ev.signals]
    m = ev.metrics and tuple(getattr(ev.metrics, n) for n in METRIC_FIELDS)
    return [*lines, repr((ev.as_of, ev.explanation, ev.late, _health(ev.health), m))]


def golden_digests(accounts: int = 200, seed: int = 3) -> tuple[dict[str, str], dict[str, int]]:
    """One sha256 per account over everything its evaluations produced; and counts (closes, signals by type)."""
    events, profiles = golden_stream(accounts)
    config = golden_config()
    rng = random.Random(f"golden-batches:{seed}")
    records = {a: AccountRecord() for a in profiles}
    hashes = {a: hashlib.sha256() for a in profiles}
    counts: Counter[str] = Counter()
    at = 0
    while at < len(events):
        batch = events[at : at + rng.choice([1, 7, 50, 400, 3000])]
        at += len(batch)
        by_account: dict[str, list[ScorerEvent]] = {}
        for e in batch:
            by_account.setdefault(e.account_id, []).append(e)
        clock = max(e.occurred_at for e in batch)
        sweep = rng.random() < 0.1  # the scorer's clock closes the days of accounts that sent nothing
        for a in by_account if not sweep else records:
            if not sweep or a in by_account or records[a].state.watermark is not None:
                ev = evaluate_account(
                    a, records[a], by_account.get(a, ()), profiles[a], config, clock=clock if sweep else None
                )
                for line in _evaluation_lines(ev):
                    hashes[a].update(line.encode() + b"\n")
                counts["closes"] += len(ev.closes)
                counts.update(f"signal:{s.signal_type}" for s in ev.signals)
                records[a] = _persisted(ev.record, ev) if rng.random() < 0.05 else ev.record
    for a, r in records.items():
        row = record_to_row(r, None)
        row["state"] = sorted((d, tuple(getattr(b, f) for f in BUCKET_FIELDS)) for d, b in r.state.days.items())
        hashes[a].update(json.dumps(row, default=str, sort_keys=True).encode())
    return {a: h.hexdigest() for a, h in hashes.items()}, dict(sorted(counts.items()))


def record_golden(path: Path = GOLDEN_PATH) -> None:
    digests, counts = golden_digests()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"counts": counts, "digests": digests}, indent=1) + "\n")


if __name__ == "__main__":
    if "--record" in sys.argv[1:]:
        record_golden()
        print(f"wrote {GOLDEN_PATH}")
    else:
        print(json.dumps(golden_digests()[1], indent=1))
