"""What the day closes cache between closes stays what it caches: the first day held, as the days are pruned."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from services.scorer.evaluate import AccountRecord, evaluate_account
from shared.events import EVENT_ADAPTER, Event

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _login(n: int, at: datetime) -> Event:
    body = {"kind": "usage", "action": "login", "event_id": f"e{n}", "account_id": "a", "user_id": "u1"}
    return EVENT_ADAPTER.validate_python(body | {"occurred_at": at.isoformat()})


def test_the_sums_first_day_is_the_first_day_held_through_pruning() -> None:
    rng = random.Random(7)
    record, at, checked = AccountRecord(), START, 0
    for n in range(400):
        at += timedelta(hours=rng.choice([1, 20, 30, 60, 200]))  # gaps of hours to over a week
        late = at - timedelta(hours=rng.choice([0, 0, 30]))  # some a day or so late
        evaluate_account("a", record, [_login(n, late)], None)
        s = record.state.sums
        if s is not None and s.first is not None:
            assert s.first == min(record.state.days).toordinal(), f"after event {n}"
            checked += 1
    assert checked > 300
    assert (at - START).days > 150  # well past the 90-day horizon: days were pruned
