"""How long a sent notice took: from its signal's event time, and from the alerter receiving the signal.

Pure: a sent outbox row and the send instant in, the two delays out (delivery.py observes them as metrics).
Only a row the signal itself caused counts, i.e. its cause is the signal's id: a reminder, a released hold, a
resolve by a person or a digest is sent late on purpose, and its payload's event time says nothing about how
fast the pipeline is. A delay below zero (an event time in the future, clocks apart) is not a delay: left out.

The event time is the signal's ``occurred_at`` (a day close, or the event that raised it), so the event delay
includes the scorer's part: a condition is signalled when its day closes. The receive delay starts at the row's
``created_at``, PostgreSQL's ``now()`` of the consumer's transaction that recorded the signal, which starts
after the poll that received it: the alerter's own part (group wait, pacing, retries, the send).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class SentRow(Protocol):
    """The columns of a deliveries row that the delays are read from."""

    @property
    def cause(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True)
class DeliveryDelay:
    """Seconds from event time and from receipt to sent; None where there is no such delay."""

    since_event: float | None
    since_received: float | None


def event_time_of(row: SentRow) -> datetime | None:
    """The event time of the signal that caused this row, or None when no signal did (reminder, digest...)."""
    payload = row.payload
    if not isinstance(payload, Mapping) or payload.get("signal_id") != row.cause:
        return None
    occurred_at = payload.get("occurred_at")
    if not isinstance(occurred_at, str):
        return None
    try:
        at = datetime.fromisoformat(occurred_at)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def delivery_delay(row: SentRow, sent_at: datetime) -> DeliveryDelay | None:
    """The delays of one row sent at ``sent_at``; None for a row no signal caused."""
    occurred_at = event_time_of(row)
    if occurred_at is None:
        return None
    since_event = (sent_at - occurred_at).total_seconds()
    since_received = (sent_at - row.created_at).total_seconds()
    return DeliveryDelay(
        since_event=since_event if since_event >= 0 else None,
        since_received=since_received if since_received >= 0 else None,
    )
