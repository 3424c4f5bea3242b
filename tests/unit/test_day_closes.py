"""Signals are decided at day closes: the same stream gives the same signals however it is cut into batches."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.evaluate import AccountRecord, evaluate_account
from services.scorer.record_rows import record_from_row, record_to_row
from services.scorer.windows import churned_by
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event
from shared.signals import SignalType

START = datetime(2026, 3, 2, tzinfo=UTC)
PROFILE = AccountProfile(account_id="a", name="A", seats_purchased=10)


def _event(n: int, at: datetime, kind: str = "usage", **fields: Any) -> Event:
    body = {"kind": kind, "event_id": f"e{n}", "account_id": "a", "occurred_at": at.isoformat(), **fields}
    return EVENT_ADAPTER.validate_python(body)


def _stream(seed: int) -> list[Event]:
    """Five weeks of daily use, then a slide with tickets and gaps: enough to raise and clear signals."""
    rng = random.Random(seed)
    events: list[Event] = []
    for day in range(60):
        users = 8 if day < 35 else max(0, 8 - (day - 35) // 2)
        if 45 <= day < 50:
            users = 0  # a silent week
        for u in range(users):
            at = START + timedelta(days=day, hours=8 + rng.randrange(10))
            events.append(_event(len(events), at, action="login", user_id=f"u{u}", quantity=3))
        if day > 38 and rng.random() < 0.4:
            at = START + timedelta(days=day, hours=12)
            events.append(_event(len(events), at, "ticket", action="opened", ticket_id=f"t{day}", priority="urgent"))
    # arrival is roughly in time order, with some events a few hours late
    return sorted(events, key=lambda e: e.occurred_at + timedelta(hours=rng.random() * 6))


def _persisted(record: AccountRecord, tip: Any) -> AccountRecord:
    """The record as the next batch reads it back from account_health."""
    row = json.loads(json.dumps(record_to_row(record, tip), default=str))
    row["as_of"] = record.as_of
    row["closed_on"] = record.closed_on
    return record_from_row(SimpleNamespace(**row))


def _signals(events: list[Event], cuts: list[int]) -> list[str]:
    record, out, tip = AccountRecord(), [], None
    bounds = [0, *sorted(set(cuts)), len(events)]
    for lo, hi in pairwise(bounds):
        record = _persisted(record, tip)
        ev = evaluate_account("a", record, events[lo:hi], PROFILE)
        record, tip = ev.record, ev.health
        out += [s.signal_id for s in ev.signals]
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 3), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_cutting_the_stream_into_batches_anywhere_gives_identical_signals(seed: int, cuts: list[int]) -> None:
    events = _stream(seed)
    whole = _signals(events, [])
    assert whole, "the stream must raise signals for the property to mean something"
    assert _signals(events, [c % len(events) for c in cuts]) == whole


def test_one_event_at_a_time_equals_one_batch() -> None:
    events = _stream(1)
    assert _signals(events, list(range(len(events)))) == _signals(events, [])


def test_signals_are_dated_at_day_closes_and_the_tip_decides_nothing() -> None:
    events = _stream(2)
    ev = evaluate_account("a", AccountRecord(), events, PROFILE)
    assert ev.signals and all(s.occurred_at.time() == time.max for s in ev.signals)
    last_day = max(e.occurred_at for e in events).date()
    assert ev.record.closed_on == last_day - timedelta(days=1)
    assert ev.as_of == max(e.occurred_at for e in events)
    assert [c.day for c in ev.closes] == sorted({c.day for c in ev.closes})


def test_the_clock_closes_the_days_of_an_idle_account_once() -> None:
    events = _stream(0)[:200]
    ev = evaluate_account("a", AccountRecord(), events, PROFILE)
    clock = max(e.occurred_at for e in events) + timedelta(days=20)
    idle = evaluate_account("a", ev.record, [], PROFILE, clock=clock)
    assert SignalType.INACTIVITY in {s.signal_type for s in idle.signals}
    assert idle.record.closed_on == clock.date() - timedelta(days=1)
    assert evaluate_account("a", idle.record, [], PROFILE, clock=clock).signals == []


def test_a_churned_account_raises_nothing_after_its_churn_day() -> None:
    events = _stream(3)
    churn_at = START + timedelta(days=40, hours=9)
    churned = _event(10_000, churn_at, "lifecycle", action="churned")
    cut = next(i for i, e in enumerate(events) if e.occurred_at > churn_at)
    ev = evaluate_account("a", AccountRecord(), [*events[:cut], churned, *events[cut:]], PROFILE)
    assert ev.signals, "signals before the churn day still count"
    assert all(s.occurred_at.date() < churn_at.date() for s in ev.signals)
    assert churned_by(ev.record.state, churn_at.date())


def test_an_account_that_comes_back_is_no_longer_churned() -> None:
    record = AccountRecord()
    evaluate_account("a", record, [_event(1, START, "lifecycle", action="churned")], PROFILE)
    assert churned_by(record.state, START.date())
    evaluate_account("a", record, [_event(2, START + timedelta(days=3), "lifecycle", action="renewed")], PROFILE)
    assert not churned_by(record.state, date(2026, 3, 6))
    assert churned_by(record.state, date(2026, 3, 3))
