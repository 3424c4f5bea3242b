"""The tip is scored where it is read, from the record as its evaluation left it, and never from a later one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scorer.evaluate import AccountRecord, TipScore, evaluate_account
from services.scorer.metrics import window_metrics
from services.scorer.scoring import score_account
from shared.events import EVENT_ADAPTER, Event

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _login(n: int, at: datetime) -> Event:
    body = {"kind": "usage", "action": "login", "event_id": f"e{n}", "account_id": "a", "user_id": f"u{n % 3}"}
    return EVENT_ADAPTER.validate_python(body | {"occurred_at": at.isoformat()})


def test_the_tip_scores_the_day_in_progress_as_window_metrics_does() -> None:
    record = AccountRecord()
    ev = evaluate_account("a", record, [_login(n, START + timedelta(hours=5 * n)) for n in range(40)], None)
    assert isinstance(ev.tip, TipScore) and ev.as_of is not None
    assert ev.tip.day == ev.as_of.date()
    expected = window_metrics(record.state, ev.as_of.date())
    assert ev.metrics == expected
    health, again = ev.health, score_account(expected, previous_band=record.health.band if record.health else None)
    assert health is not None and (health.score, health.band) == (again.score, again.band)
    assert ev.explanation  # worded when read
    assert ev.tip.scored() is ev.tip.scored()  # once


def test_a_tip_read_after_its_record_moved_on_refuses() -> None:
    record = AccountRecord()
    first = evaluate_account("a", record, [_login(0, START)], None)
    evaluate_account("a", record, [_login(1, START + timedelta(days=2))], None)
    with pytest.raises(RuntimeError, match="evaluated again"):
        _ = first.health


def test_an_account_without_events_has_no_tip() -> None:
    ev = evaluate_account("a", AccountRecord(), [], None)
    assert ev.tip is None and ev.health is None and ev.metrics is None and ev.explanation == ""
