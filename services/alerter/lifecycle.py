"""The alert lifecycle, its dedup rule and its timers. Pure: no I/O, time passed in.

An alert is keyed by (account, signal type): open -> acknowledged -> snoozed (until) -> resolved.
An open alert is not sent again unless the severity rises, or as a reminder after the repeat interval while
nobody acknowledged it (Alertmanager's repeat_interval). A snooze that expires reopens the alert with a
reminder. A recovery resolves it and sends a short "resolved" notice; a new signal after that reopens it.

Inhibition (Alertmanager's inhibit rule): while an account has an open or acknowledged critical alert, the
notices of its other signal types at a target severity (warning) are recorded but held back. When that
critical alert stops being open or acknowledged, each alert it held back that is still open is sent once,
with the notice it held (a held "new" stays "new": nobody has seen it yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
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
    held: Notice | None = None  # the notice an inhibition is holding back


@dataclass(frozen=True)
class Decision:
    state: AlertState
    severity: Severity
    notice: Notice | None  # None: record it, send nothing
    held: Notice | None = None  # inhibited: the notice it would have sent, to send when released
    inhibited_by: int | None = None  # the critical alert holding it back


@dataclass(frozen=True)
class InhibitPolicy:
    enabled: bool = True
    targets: frozenset[Severity] = frozenset({Severity.WARNING})


@dataclass(frozen=True)
class SiblingAlert:
    """Another alert on the same account, as inhibition sees it."""

    alert_id: int
    signal_type: str
    state: AlertState
    severity: Severity


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


_INHIBITING_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


def is_inhibitor(state: AlertState, severity: Severity) -> bool:
    """Only a critical alert someone still has to deal with (open or acknowledged) mutes its account's others."""
    return severity is Severity.CRITICAL and state in _INHIBITING_STATES


def inhibitor_of(
    signal_type: str, severity: Severity, siblings: Iterable[SiblingAlert], policy: InhibitPolicy
) -> int | None:
    """The critical alert (lowest id) that mutes an alert of this type and severity on the same account."""
    if not policy.enabled or severity not in policy.targets:
        return None
    ids = [s.alert_id for s in siblings if s.signal_type != signal_type and is_inhibitor(s.state, s.severity)]
    return min(ids, default=None)


def inhibit(decision: Decision, inhibitor: int | None, held_before: Notice | None) -> Decision:
    """Hold the decision's notice back while ``inhibitor`` mutes it; an unheld decision clears the hold."""
    if inhibitor is None or decision.notice is None:
        return decision
    return replace(decision, notice=None, held=_merge_held(held_before, decision.notice), inhibited_by=inhibitor)


def _merge_held(before: Notice | None, now: Notice) -> Notice:
    """A held "new" stays "new" (nobody saw the alert) until it resolves; otherwise the latest notice wins."""
    if before is Notice.NEW and now is not Notice.RESOLVED:
        return Notice.NEW
    return now


def release(existing: ExistingAlert, inhibitor: int | None) -> Decision:
    """The critical alert holding this one back is gone: still muted by another, or sent once if still open."""
    if inhibitor is not None:
        return Decision(existing.state, existing.severity, None, held=existing.held, inhibited_by=inhibitor)
    notice = existing.held if existing.state is AlertState.OPEN else None
    return Decision(existing.state, existing.severity, notice)
