"""The alert lifecycle, its dedup rule and its timers. Pure: no I/O, time passed in.

An alert is keyed by (account, signal type): open -> acknowledged -> snoozed (until) -> resolved.
An open alert is not sent again unless the severity rises, or as a reminder after the repeat interval while
nobody acknowledged it (Alertmanager's repeat_interval). A snooze that expires reopens the alert with a
reminder. A recovery resolves it and sends a short "resolved" notice; a new signal after that reopens it.

Inhibition (Alertmanager's inhibit rule): while an account has an open or acknowledged critical alert, the
notices of its other signal types at a target severity (warning) are recorded but held back. When that
critical alert stops being open or acknowledged, each alert it held back that is still open is sent once,
with the notice it held (a held "new" stays "new": nobody has seen it yet).

Every decision carries a notice mode (notice_mode.py): live notices are sent, quiet (a rule below the
backtested lift floor), historic (backfilled) and shadow ones are recorded only. An alert nobody was told
about (open, its latest notice quiet, historic or shadow) is news to everyone when a live signal of it
arrives: that signal opens it as "new", even at a severity that would otherwise be dropped as "already
open". A quiet or historic alert gets no reminders, and a recovery, an expired snooze or a release sends
nothing for it; a critical alert nobody was told about mutes only notices that are not sent either.

A quiet rule and a routed one: quality is per signal type and severity and comes with each signal, so a
quiet usage_drop warning followed by a usage_drop critical that earned its place opens the alert as "new"
to its people (nobody was told of the warning); other types are other alerts. An alert a person was told
about that a quiet signal then escalates records the escalation as quiet and sends no reminders, but its
recovery or resolve is still told (``seen_mode``): whoever heard it open hears it close.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.alerter.notice_mode import NoticeMode, quietest
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
    mode: NoticeMode = NoticeMode.LIVE  # how its latest notice (sent or held) was recorded

    @property
    def seen_mode(self) -> NoticeMode:
        """How its people last heard of it: its latest notice's mode, except that a quiet escalation of an
        alert someone was told about (``last_notified_at`` kept: quiet notices do not set it) leaves it seen."""
        if self.mode is NoticeMode.QUIET and self.last_notified_at is not None:
            return NoticeMode.LIVE
        return self.mode

    @property
    def unseen(self) -> bool:
        """Open, and nobody was told: its latest notice was quiet, historic or shadow, recorded but not sent."""
        return self.state is AlertState.OPEN and self.seen_mode is not NoticeMode.LIVE


@dataclass(frozen=True)
class Decision:
    state: AlertState
    severity: Severity
    notice: Notice | None  # None: record it, send nothing
    held: Notice | None = None  # inhibited: the notice it would have sent, to send when released
    inhibited_by: int | None = None  # the critical alert holding it back
    mode: NoticeMode = NoticeMode.LIVE  # of the notice (or the held one): sent, or only recorded


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
    mode: NoticeMode = NoticeMode.LIVE


class Outcome(StrEnum):
    """What became of the account after a resolved alert: the feedback that measures warning quality."""

    SAVED = "saved"
    CHURNED_ANYWAY = "churned_anyway"
    FALSE_ALARM = "false_alarm"
    NOT_ACTIONABLE = "not_actionable"


class TransitionRefused(ValueError):
    """A person asked for a change the alert's state does not allow (e.g. acknowledging a resolved alert)."""


def decide(existing: ExistingAlert | None, signal: RiskSignal, mode: NoticeMode = NoticeMode.LIVE) -> Decision | None:
    """What a signal (its notices in ``mode``) does to the alert it belongs to; None when it changes nothing."""
    if signal.recovered:
        if existing is None or existing.state is AlertState.RESOLVED:
            return None
        quiet = quietest(mode, existing.seen_mode)  # nobody was told it opened: nobody is told it resolved
        return Decision(AlertState.RESOLVED, existing.severity, Notice.RESOLVED, mode=quiet)
    if existing is None or existing.state is AlertState.RESOLVED or (existing.unseen and mode is NoticeMode.LIVE):
        return Decision(AlertState.OPEN, signal.severity, Notice.NEW, mode=mode)
    if signal.severity.rank > existing.severity.rank:
        return Decision(
            existing.state if existing.state is not AlertState.SNOOZED else AlertState.OPEN,
            signal.severity,
            Notice.ESCALATED,
            mode=mode,
        )
    return None


def on_timer(
    existing: ExistingAlert,
    now: datetime,
    repeat_interval: timedelta | None,
    own_mode: NoticeMode = NoticeMode.LIVE,
) -> Decision | None:
    """What the passing of time does: an expired snooze reopens the alert; an unacknowledged one is repeated.

    An alert whose latest notice was historic or quiet is not repeated, and its expired snooze reopens it
    silently; ``own_mode`` is this alerter's (shadow: reminders recorded, not sent)."""
    mode = quietest(existing.mode, own_mode)
    reminder = Notice.REMINDER if mode.would_be_sent else None
    if existing.state is AlertState.SNOOZED:
        if existing.snoozed_until is not None and existing.snoozed_until <= now:
            return Decision(AlertState.OPEN, existing.severity, reminder, mode=mode)
        return None
    last = existing.last_notified_at
    due = repeat_interval and last is not None and last + repeat_interval <= now
    if existing.state is AlertState.OPEN and due and reminder is not None:
        return Decision(AlertState.OPEN, existing.severity, reminder, mode=mode)
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


def mutes(sibling: SiblingAlert, mode: NoticeMode) -> bool:
    """A critical alert someone was told about mutes any notice; one nobody was told about (historic or
    shadow) only notices that are not sent either: live news is not held back by what nobody has seen."""
    unsent = sibling.mode is not NoticeMode.LIVE and mode is NoticeMode.LIVE
    return is_inhibitor(sibling.state, sibling.severity) and not unsent


def inhibitor_of(
    signal_type: str,
    severity: Severity,
    siblings: Iterable[SiblingAlert],
    policy: InhibitPolicy,
    mode: NoticeMode = NoticeMode.LIVE,
) -> int | None:
    """The critical alert (lowest id) that mutes a notice in ``mode`` of this type and severity, same account."""
    if not policy.enabled or severity not in policy.targets:
        return None
    ids = [s.alert_id for s in siblings if s.signal_type != signal_type and mutes(s, mode)]
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


def release(existing: ExistingAlert, inhibitor: int | None, own_mode: NoticeMode = NoticeMode.LIVE) -> Decision:
    """The critical alert holding this one back is gone: still muted by another, or sent once if still open
    (in the held notice's mode: a held historic notice is recorded, not sent)."""
    mode = quietest(existing.mode, own_mode)
    if inhibitor is not None:
        return Decision(existing.state, existing.severity, None, existing.held, inhibitor, mode=existing.mode)
    notice = existing.held if existing.state is AlertState.OPEN else None
    return Decision(existing.state, existing.severity, notice, mode=mode)
