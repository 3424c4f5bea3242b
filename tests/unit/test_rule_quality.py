"""Each rule's backtested track record: read from its file, attached to the signals it raises."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.backtest.measures import build_report
from services.backtest.model import (
    AccountHistory,
    Alert,
    BacktestParams,
    Period,
)
from services.backtest.rule_quality import rule_quality_from_report
from services.scorer.evaluate import AccountRecord, ScoringConfig, evaluate_account
from services.scorer.rule_quality import (
    RuleQualityError,
    RuleQualityTable,
    default_rule_quality_path,
    load_rule_quality,
)
from shared.events import EVENT_ADAPTER
from shared.signals import RuleQuality, Severity, SignalType

Q = RuleQuality(precision=0.1, lift=4.0, judged_alerts=50, source="test")


def test_type_and_severity_wins_over_type() -> None:
    table = RuleQualityTable({"usage_drop": Q, "usage_drop/critical": Q.model_copy(update={"lift": 7.0})})
    assert table.lookup(SignalType.USAGE_DROP, Severity.CRITICAL).lift == 7.0  # type: ignore[union-attr]
    assert table.lookup(SignalType.USAGE_DROP, Severity.WARNING) == Q
    assert table.lookup(SignalType.DETRACTOR, Severity.WARNING) is None


def test_the_shipped_file_loads() -> None:
    load_rule_quality(default_rule_quality_path())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{nope", "not JSON"),
        ('{"format": "x", "version": 1, "rules": {}}', "format"),
        ('{"format": "churnwatch-rule-quality", "version": 9, "rules": {}}', "version"),
        ('{"format": "churnwatch-rule-quality", "version": 1, "rules": {"bogus": {}}}', "unknown signal type"),
        ('{"format": "churnwatch-rule-quality", "version": 1, "rules": {"usage_drop": {"lift": 1}}}', "usage_drop"),
    ],
)
def test_a_bad_file_is_refused_naming_it_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "quality.json"
    path.write_text(text)
    with pytest.raises(RuleQualityError) as caught:
        load_rule_quality(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuleQualityError, match="cannot be read"):
        load_rule_quality(tmp_path / "absent.json")


def test_a_backtest_writes_a_file_the_scorer_reads(tmp_path: Path) -> None:
    start = date(2026, 1, 1)
    accounts = [
        AccountHistory(f"a{i}", start, date(2026, 6, 30), date(2026, 4, 1) if i < 2 else None) for i in range(6)
    ]
    alerts = [Alert(f"a{i}", "usage_drop", "warning", date(2026, 3, 1)) for i in range(4)]
    report = build_report(accounts, alerts, period=Period(start, date(2026, 6, 30)), params=BacktestParams())
    path = tmp_path / "q.json"
    path.write_text(json.dumps(rule_quality_from_report(report, "unit test")))
    table = load_rule_quality(path)
    found = table.lookup(SignalType.USAGE_DROP, Severity.WARNING)
    assert found is not None and found.precision == 0.5 and found.judged_alerts == 4


def test_signals_carry_their_rule_quality_and_recoveries_none() -> None:
    config = ScoringConfig(rule_quality=RuleQualityTable({"inactivity": Q}))
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    events = [
        EVENT_ADAPTER.validate_python(
            {"kind": "usage", "action": "login", "event_id": f"e{d}", "account_id": "a", "user_id": "u"}
            | {"occurred_at": (start + timedelta(days=d if d < 20 else d + 9)).isoformat()}
        )
        for d in range(30)
    ]
    ev = evaluate_account("a", AccountRecord(), events, None, config)
    inactive = [s for s in ev.signals if s.signal_type is SignalType.INACTIVITY]
    assert inactive and all((s.quality == Q) != s.recovered for s in inactive)


def test_the_backtest_counts_apart_what_reaches_people() -> None:
    """A rule below the lift floor is kept quiet by the alerter: the "routed to people" row leaves it out."""
    from services.backtest.cli import ROUTED, measure
    from services.backtest.source import BacktestInputs

    start, end = date(2026, 1, 1), date(2026, 6, 30)
    accounts = [AccountHistory(f"a{i}", start, end, date(2026, 4, 1) if i < 2 else None) for i in range(6)]
    alerts = [Alert(f"a{i}", "usage_drop", "warning", date(2026, 3, 1)) for i in range(6)]
    alerts += [Alert("a0", "inactivity", "warning", date(2026, 3, 2))]
    table = RuleQualityTable({"usage_drop/warning": Q.model_copy(update={"lift": 1.1})})
    report = measure(BacktestInputs(accounts, alerts, [], Period(start, end)), quality=table, min_rule_lift=2.0)
    routed = next(r for r in report.rules if r.rule.label == ROUTED)
    assert (report.rules[0].alerts, routed.alerts, routed.right) == (7, 1, 1)
