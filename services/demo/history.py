"""Writes a simulated customer base's history with its outcomes to files, for backtests.

``write_history`` writes, into one directory:

- ``events.jsonl.gz``: every event (the one schema, shared/events.py), one per line, sorted by ``occurred_at``;
- ``accounts.jsonl``: one ``AccountProfile`` per line, as of the first day (with ``created_date``);
- ``outcomes.csv``: ``account_id,churned_on`` for the accounts that churned in the period;
- ``archetypes.csv``: ``account_id,archetype,churn_cause``, the generator's ground truth, for breaking a backtest's
  recall down by story (not an input to any rule or model);
- ``manifest.json``: generator version, seed, parameters, counts per archetype and the base rate.

The same (seed, accounts, start, days, params) gives byte-identical files (gzip without a timestamp).
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.demo.customer_base import GENERATOR_VERSION, BaseParams, CustomerBase, base_rate, iter_days, plan_base

HORIZON_DAYS = 60
MIN_AGE_DAYS = 28
BASE_RATE_DEFINITION = (
    "account-weeks (7-day blocks from the start, evaluated on their last day) of accounts alive and at least "
    f"{MIN_AGE_DAYS} days old that day, whose {HORIZON_DAYS}-day horizon ends inside the period; "
    f"positive if the account churned within {HORIZON_DAYS} days after that day"
)


class ArchetypeCounts(BaseModel):
    accounts: int = 0
    events: int = 0
    churners: int = 0


class HistoryManifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    generator: str
    seed: int
    accounts: int
    start: date
    end: date  # the last day with events
    days: int
    params: dict[str, Any]
    events: int
    events_by_kind: dict[str, int]
    churners: int
    churners_by_cause: dict[str, int]
    archetypes: dict[str, ArchetypeCounts]
    base_rate: float
    base_rate_weeks: int
    base_rate_positives: int
    base_rate_horizon_days: int = HORIZON_DAYS
    base_rate_definition: str = BASE_RATE_DEFINITION


Progress = Callable[[date, int], None]


def days_in_months(start: date, months: int) -> int:
    """Days from ``start`` to the same day ``months`` calendar months later (clamped to the month's end)."""
    year, month = divmod(start.month - 1 + months, 12)
    end_month = date(start.year + year, month + 1, 1)
    next_month = date(end_month.year + end_month.month // 12, end_month.month % 12 + 1, 1)
    last_day = (next_month - end_month).days
    return (end_month.replace(day=min(start.day, last_day)) - start).days


def write_history(
    out_dir: Path,
    *,
    accounts: int,
    days: int,
    start: date,
    seed: int,
    params: BaseParams | None = None,
    progress: Progress | None = None,
) -> HistoryManifest:
    """Generates the base day by day and writes its files into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = plan_base(accounts, start=start, days=days, seed=seed, params=params)
    _write_accounts(out_dir, base)
    kinds, per_account = _write_events(out_dir / "events.jsonl.gz", base, progress)
    manifest = _manifest(base, kinds, per_account)
    (out_dir / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def _write_accounts(out_dir: Path, base: CustomerBase) -> None:
    with (out_dir / "accounts.jsonl").open("w") as f:
        f.writelines(a.profile.model_dump_json() + "\n" for a in base.accounts)
    with (out_dir / "outcomes.csv").open("w", newline="") as f:
        outcomes = csv.writer(f, lineterminator="\n")
        outcomes.writerow(["account_id", "churned_on"])
        outcomes.writerows([a.profile.account_id, base.churned_on(a)] for a in base.accounts if a.churn_day is not None)
    with (out_dir / "archetypes.csv").open("w", newline="") as f:
        truth = csv.writer(f, lineterminator="\n")
        truth.writerow(["account_id", "archetype", "churn_cause"])
        truth.writerows([a.profile.account_id, a.archetype, a.churn_cause or ""] for a in base.accounts)


def _write_events(path: Path, base: CustomerBase, progress: Progress | None) -> tuple[Counter[str], Counter[str]]:
    kinds: Counter[str] = Counter()
    per_account: Counter[str] = Counter()
    total = 0
    encode = json.JSONEncoder(separators=(",", ":")).encode
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        for day, events in iter_days(base):
            if events:
                gz.write(("\n".join(map(encode, events)) + "\n").encode())
            kinds.update(f"{e['kind']}.{e['action']}" if "action" in e else e["kind"] for e in events)
            per_account.update(e["account_id"] for e in events)
            total += len(events)
            if progress is not None and (day.day == 1 or (day - base.start).days == base.days - 1):
                progress(day, total)
    return kinds, per_account


def _manifest(base: CustomerBase, kinds: Counter[str], per_account: Counter[str]) -> HistoryManifest:
    archetypes: dict[str, ArchetypeCounts] = {}
    causes: Counter[str] = Counter()
    for a in base.accounts:
        counts = archetypes.setdefault(a.archetype.value, ArchetypeCounts())
        counts.accounts += 1
        counts.events += per_account[a.profile.account_id]
        if a.churn_cause is not None:
            counts.churners += 1
            causes[a.churn_cause.value] += 1
    rate = base_rate(base, horizon_days=HORIZON_DAYS, min_age_days=MIN_AGE_DAYS)
    return HistoryManifest(
        generator=GENERATOR_VERSION,
        seed=base.seed,
        accounts=len(base.accounts),
        start=base.start,
        end=base.start + timedelta(days=base.days - 1),
        days=base.days,
        params=json.loads(json.dumps(dataclasses.asdict(base.params))),
        events=sum(kinds.values()),
        events_by_kind=dict(sorted(kinds.items())),
        churners=sum(causes.values()),
        churners_by_cause=dict(sorted(causes.items())),
        archetypes=dict(sorted(archetypes.items())),
        base_rate=round(rate.rate, 5),
        base_rate_weeks=rate.weeks,
        base_rate_positives=rate.positives,
    )


def summary_lines(manifest: HistoryManifest, out_dir: Path, seconds: float) -> list[str]:
    """A one-screen summary of a written history."""
    lines = [
        f"wrote {out_dir}: {manifest.accounts} accounts, {manifest.start} .. {manifest.end} ({manifest.days} days), "
        f"seed {manifest.seed}, {manifest.generator}",
        f"events: {manifest.events:,} ({manifest.events / max(1, manifest.accounts * manifest.days):.1f} per "
        f"account-day) in {seconds:.1f} s",
        "  " + ", ".join(f"{k} {v:,}" for k, v in sorted(manifest.events_by_kind.items(), key=lambda kv: -kv[1])),
        f"churners: {manifest.churners} ({manifest.churners / max(1, manifest.accounts):.1%}); by cause: "
        + ", ".join(f"{k} {v}" for k, v in manifest.churners_by_cause.items()),
        f"base rate: {manifest.base_rate:.2%} of {manifest.base_rate_weeks:,} account-weeks followed by churn "
        f"within {manifest.base_rate_horizon_days} days",
        f"{'archetype':<18}{'accounts':>9}{'churners':>9}{'events':>12}",
    ]
    for name, c in manifest.archetypes.items():
        lines.append(f"{name:<18}{c.accounts:>9}{c.churners:>9}{c.events:>12,}")
    return lines


def simulate_history(
    out_dir: Path,
    *,
    accounts: int | None = None,
    months: int | None = None,
    days: int | None = None,
    start: date = date(2026, 1, 5),
    seed: int | None = None,
) -> int:
    """``churnwatch simulate --out``: writes the files, printing progress per month and a summary."""
    started = time.perf_counter()

    def month_done(day: date, events: int) -> None:
        print(f"  {day:%Y-%m-%d}: {events:,} events ({time.perf_counter() - started:.1f} s)", flush=True)

    span = days if days is not None else days_in_months(start, 6 if months is None else months)
    manifest = write_history(
        out_dir,
        accounts=1000 if accounts is None else accounts,
        days=span,
        start=start,
        seed=11 if seed is None else seed,
        progress=month_done,
    )
    print("\n".join(summary_lines(manifest, out_dir, time.perf_counter() - started)))
    return 0
