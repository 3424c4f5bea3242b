"""The alert lifecycle, its dedup rule and its timers. Pure: no I/O, time passed in.

An alert is keyed by (account, signal type): open -> acknowledged -> snoozed (until) -> resolved.
An open alert is not sent again unless the severity rises, or as a reminder after the repeat interval while
nobody acknowledged it (Alertmanager's repeat_interval). A snooze that expires reopens the alert with a
reminder. A recovery resolves it and sends a short "resolved" notice; a new signal after that reopens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.signals import RiskSignal, Severity


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Notice(StrEnum):
    NEW = "new"
    ESCALATED = "escalated"
    REMINDER = "reminder"
    RESOLVED = "resolved"


class Action(StrEnum):
    ACK = "ack"
    SNOOZE = "snooze"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class ExistingAlert:
    state: AlertState
    severity: Severity
    last_notified_at: datetime | None = None
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class Decision:
    state: AlertState
    severity: Severity
    notice: Notice | None  # None: record it, send nothing


class TransitionRefused(ValueError):
    """A person asked for a change the alert's state does not allow (e.g. acknowledging a resolved alert)."""


def decide(existing: ExistingAlert | None, signal: RiskSignal) -> Decision | None:
    """What a signal does to the alert it belongs to; None when it changes nothing."""
    if signal.recovered:
        if existing is None or existing.state is AlertState.RESOLVED:
            return None
        return Decision(AlertState.RESOLVED, existing.severity, Notice.RESOLVED)
    if existing is None or existing.state is AlertState.RESOLVED:
        return Decision(AlertState.OPEN, signal.severity, Notice.NEW)
    if signal.severity.rank > existing.severity.rank:
        return Decision(
            existing.state if existing.state is not AlertState.SNOOZED else AlertState.OPEN,
            signal.severity,
            Notice.ESCALATED,
        )
    return None


def on_timer(existing: ExistingAlert, now: datetime, repeat_interval: timedelta | None) -> Decision | None:
    """What the passing of time does: an expired snooze reopens the alert; an unacknowledged one is repeated."""
    if existing.state is AlertState.SNOOZED:
        if existing.snoozed_until is not None and existing.snoozed_until <= now:
            return Decision(AlertState.OPEN, existing.severity, Notice.REMINDER)
        return None
    last = existing.last_notified_at
    if existing.state is AlertState.OPEN and repeat_interval and last is not None and last + repeat_interval <= now:
        return Decision(AlertState.OPEN, existing.severity, Notice.REMINDER)
    return None


def apply_action(state: AlertState, action: Action) -> AlertState:
    """A person's ack, snooze or resolve. Resolving twice is harmless; acting on a resolved alert is refused."""
    if action is Action.RESOLVE:
        return AlertState.RESOLVED
    if state is AlertState.RESOLVED:
        raise TransitionRefused(f"cannot {action.value} a resolved alert")
    return AlertState.ACKNOWLEDGED if action is Action.ACK else AlertState.SNOOZED


def digest_window(at: datetime, interval: timedelta, offset: timedelta) -> int:
    """The index of the digest period ``at`` falls in; periods start at ``offset`` past each interval (UTC)."""
    return int((at.timestamp() - offset.total_seconds()) // interval.total_seconds())


def digest_due(oldest_item_at: datetime, now: datetime, interval: timedelta, offset: timedelta) -> bool:
    """A digest goes out at the start of the period after the one its oldest item arrived in."""
    return digest_window(now, interval, offset) > digest_window(oldest_item_at, interval, offset)
