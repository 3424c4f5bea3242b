"""The backtest customer base: deterministic, valid events, outcomes that agree with them, realistic figures."""

from __future__ import annotations

import csv
import gzip
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.cli import main
from services.demo.customer_base import Archetype, BaseParams, ChurnCause, base_rate, plan_base
from services.demo.history import HistoryManifest, days_in_months, write_history
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER

START = date(2026, 1, 5)
FILES = ("events.jsonl.gz", "accounts.jsonl", "outcomes.csv", "archetypes.csv", "manifest.json")
CHURNY = BaseParams(hazard_base=-3.5, signup_fraction=0.3)  # many churners and sign-ups in a small base


@dataclass(frozen=True)
class History:
    path: Path
    manifest: HistoryManifest
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    out = tmp_path_factory.mktemp("history")
    manifest = write_history(out, accounts=60, days=91, start=START, seed=5, params=CHURNY)
    with gzip.open(out / "events.jsonl.gz", "rt") as f:
        events = [json.loads(line) for line in f]
    return History(out, manifest, events)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_history(tmp_path / name, accounts=12, days=30, start=START, seed=seed)
    for file in FILES:
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert (tmp_path / "a" / "events.jsonl.gz").read_bytes() != (tmp_path / "c" / "events.jsonl.gz").read_bytes()


def test_events_validate_and_are_sorted_with_unique_ids(history: History) -> None:
    for event in history.events[::7]:
        EVENT_ADAPTER.validate_python(event)
    times = [e["occurred_at"] for e in history.events]
    assert times == sorted(times)
    assert len({e["event_id"] for e in history.events}) == len(history.events)
    assert all(e["event_id"].startswith("h5-") for e in history.events)
    assert history.manifest.events == len(history.events)


def test_volume_is_about_a_dozen_events_per_account_day(history: History) -> None:
    per_account_day = len(history.events) / (60 * 91)
    assert 6 <= per_account_day <= 16, per_account_day  # the churny base loses accounts early
    kinds = {(e["kind"], e.get("action")) for e in history.events}
    for expected in [("usage", "login"), ("usage", "feature_used"), ("ticket", "opened"), ("ticket", "resolved")]:
        assert expected in kinds
    assert any(e["kind"] == "feedback" and "nps" in e for e in history.events)


def test_churned_accounts_send_churned_on_their_day_and_nothing_after(history: History) -> None:
    with (history.path / "outcomes.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["account_id", "churned_on"]
    outcomes = {account: date.fromisoformat(day) for account, day in rows[1:]}
    churned = {e["account_id"]: e["occurred_at"][:10] for e in history.events if e.get("action") == "churned"}
    assert len(outcomes) >= 5
    assert {a: d.isoformat() for a, d in outcomes.items()} == churned
    last_event: dict[str, dict[str, Any]] = {}
    for e in history.events:
        last_event[e["account_id"]] = e
    for account in outcomes:
        assert last_event[account]["action"] == "churned", account
    assert history.manifest.churners == len(outcomes)


def test_accounts_file_holds_profiles_as_of_the_start(history: History) -> None:
    with (history.path / "accounts.jsonl").open() as f:
        profiles = [AccountProfile.model_validate_json(line) for line in f]
    assert len(profiles) == 60
    assert all(p.created_date is not None and p.renewal_date is not None for p in profiles)
    assert {p.plan for p in profiles} == {"starter", "growth", "enterprise"}
    assert len({p.csm for p in profiles}) >= 5


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_churn_share_and_base_rate_fall_in_the_target_ranges(seed: int) -> None:
    base = plan_base(600, start=START, days=273, seed=seed)  # 9 months
    churners = [a for a in base.accounts if a.churn_day is not None]
    assert 0.08 <= len(churners) / 600 <= 0.15
    assert 0.01 <= base_rate(base).rate <= 0.03
    silent = sum(a.churn_cause is ChurnCause.NO_WARNING for a in churners) / len(churners)
    assert 0.05 <= silent <= 0.35, silent  # ~15-20 % on average
    shocked = [a for a in base.accounts if a.archetype is Archetype.VALUE_SHOCK]
    steady = [a for a in base.accounts if a.archetype is Archetype.STEADY]
    assert _churn_share(shocked) > 2 * _churn_share(steady)


def test_healthy_accounts_have_large_usage_dips(history: History) -> None:
    """Noise exists: many accounts that never churn have a week under 60 % of the four weeks before it."""
    weekly: dict[str, list[float]] = defaultdict(lambda: [0.0] * 13)
    for e in history.events:
        if e["kind"] == "usage" and e["action"] in ("login", "feature_used"):
            weekly[e["account_id"]][(date.fromisoformat(e["occurred_at"][:10]) - START).days // 7] += e.get(
                "quantity", 1
            )
    churned = {e["account_id"] for e in history.events if e.get("action") == "churned"}
    stayed = [w for a, w in weekly.items() if a not in churned and min(w) > 0]
    dipped = [w for w in stayed if any(w[i] < 0.6 * statistics.mean(w[i - 4 : i]) for i in range(4, 13))]
    assert len(stayed) >= 15
    assert len(dipped) >= 0.2 * len(stayed), (len(dipped), len(stayed))


def test_onboarding_accounts_sign_up_and_ramp_up(history: History) -> None:
    base = plan_base(60, start=START, days=91, seed=5, params=CHURNY)
    signups = [a for a in base.accounts if a.created_day >= 0]
    assert {a.archetype for a in signups} == {Archetype.ONBOARDING, Archetype.ONBOARDING_STALL}
    signed = {e["account_id"] for e in history.events if e.get("action") == "signed_up"}
    assert signed == {a.profile.account_id for a in signups}
    first_events: dict[str, dict[str, Any]] = {}
    for e in history.events:
        first_events.setdefault(e["account_id"], e)
    assert all(first_events[a]["action"] == "signed_up" for a in signed)
    with_milestones = {e["account_id"] for e in history.events if e.get("action") == "onboarding_milestone"}
    assert with_milestones and with_milestones < signed  # only some products report milestones


def test_account_plans_do_not_depend_on_the_base_size() -> None:
    small, large = plan_base(5, start=START, days=60, seed=2), plan_base(50, start=START, days=60, seed=2)
    assert small.accounts == large.accounts[:5]


def test_days_in_months() -> None:
    assert days_in_months(START, 6) == 181
    assert days_in_months(date(2026, 1, 31), 1) == 28
    assert days_in_months(date(2026, 11, 15), 3) == 92


def test_cli_simulate_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path), "--accounts", "8", "--days", "20", "--seed", "3"]) == 0
    assert all((tmp_path / f).exists() for f in FILES)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert (manifest["accounts"], manifest["days"], manifest["seed"]) == (8, 20, 3)
    assert "base rate" in capsys.readouterr().out


def _churn_share(accounts: list[Any]) -> float:
    return sum(a.churn_day is not None for a in accounts) / max(1, len(accounts))
