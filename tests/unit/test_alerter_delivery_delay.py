"""The delays of a sent notice (services/alerter/delivery_delay.py): which rows count, and from when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.alerter.delivery_delay import DeliveryDelay, delivery_delay, event_time_of

SENT_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY_CLOSE = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    cause: str = "usage_drop:abc"
    payload: Mapping[str, Any] = field(
        default_factory=lambda: {"signal_id": "usage_drop:abc", "occurred_at": "2026-03-01T23:59:59.999999Z"}
    )
    created_at: datetime = SENT_AT - timedelta(seconds=3)


def payload(occurred_at: str, signal_id: str = "usage_drop:abc") -> dict[str, Any]:
    return {"signal_id": signal_id, "occurred_at": occurred_at}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (Row(), DeliveryDelay(since_event=(SENT_AT - DAY_CLOSE).total_seconds(), since_received=3.0)),
        (Row(payload=payload("2026-03-02T11:59:30+00:00")), DeliveryDelay(30.0, 3.0)),
        # an event time in the future (a producer's clock ahead): no event delay; the receipt delay still counts
        (Row(payload=payload("2026-03-02T12:05:00Z")), DeliveryDelay(None, 3.0)),
        # PostgreSQL's clock ahead of the alerter's: no receipt delay
        (Row(created_at=SENT_AT + timedelta(seconds=1)), DeliveryDelay((SENT_AT - DAY_CLOSE).total_seconds(), None)),
        (Row(payload=payload("2026-03-02T12:00:00Z")), DeliveryDelay(0.0, 3.0)),
    ],
)
def test_a_row_its_signal_caused_has_both_delays(row: Row, expected: DeliveryDelay) -> None:
    assert delivery_delay(row, SENT_AT) == expected


@pytest.mark.parametrize(
    "row",
    [
        Row(cause="reminder:7:1"),  # the alert's last signal, re-sent hours later on purpose
        Row(cause="released:7:9:1700000000000"),
        Row(cause="resolve:7:1700000000000"),
        Row(cause="digest:0123abcd:2026-03-02", payload={"period": "2026-03-02", "items": []}),
        Row(payload=payload("yesterday")),
        Row(payload=payload("2026-03-01T10:00:00")),  # no offset: not an instant
        Row(payload={"signal_id": "usage_drop:abc"}),
    ],
)
def test_a_row_no_signal_caused_or_without_an_instant_has_no_delay(row: Row) -> None:
    assert delivery_delay(row, SENT_AT) is None


def test_the_event_time_is_the_signals_occurred_at() -> None:
    assert event_time_of(Row()) == DAY_CLOSE
