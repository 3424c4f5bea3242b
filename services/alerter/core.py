"""The alerter's core: one pure function from a change to its effects. No SQL, no sockets, time passed in.

``decide_change(change, the account's alerts, routing, now) -> Effects``. A change is a signal that arrived, the
scheduler's timer for one alert, a person's ack / snooze / resolve, or a hold whose critical alert is gone. The
effects are the alert rows to write, the notices to queue (with their destinations and mode) and the notices
held back. The consumer, the scheduler and the API all call it and hand the effects to the one writer
(store.py), so the sequence "decide -> hold back (inhibition) -> alert columns -> queue notice -> release held"
is written once, here. The rules themselves are in lifecycle.py and notice_mode.py; the changes and effects
as data in changes.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.alerter.changes import (
    AlertRow,
    AlertWrite,
    Change,
    Effects,
    HoldEnded,
    NoticeRouting,
    OutcomeRecorded,
    PersonActed,
    QueuedNotice,
    SignalArrived,
    TimerFired,
    UnknownAlert,
)
from services.alerter.lifecycle import (
    Action,
    AlertState,
    Decision,
    ExistingAlert,
    InhibitPolicy,
    Notice,
    Outcome,
    TransitionRefused,
    apply_action,
    decide,
    inhibit,
    inhibitor_of,
    is_inhibitor,
    on_timer,
    release,
)
from services.alerter.notice_mode import NoticeMode
from shared.signals import RiskSignal


def decide_change(change: Change, alerts: Sequence[AlertRow], routing: NoticeRouting, now: datetime) -> Effects:
    """What ``change`` does to an account whose alerts are ``alerts`` (all of them, one account)."""
    if isinstance(change, SignalArrived):
        return _on_signal(change.signal, alerts, routing, now)
    if isinstance(change, HoldEnded):
        return _release_held(change.source_id, alerts, routing, now)
    row = _find(alerts, change.alert_id)
    if isinstance(change, OutcomeRecorded):
        return _on_outcome(row, change, now)
    if isinstance(change, TimerFired):
        step = _on_timer(row, change, routing, now)
    else:
        step = _on_person(row, change, routing, now)
    return _carry_out(step, alerts, routing, now) if step else Effects()


@dataclass(frozen=True)
class _Step:
    """A decision about one alert, before inhibition and columns: what the shared sequence works from."""

    account_id: str
    signal_type: str
    row: AlertRow | None
    decision: Decision
    cause: str
    signal: RiskSignal
    base_cols: Mapping[str, Any] = field(default_factory=dict)
    notice_cols: Mapping[str, Any] = field(default_factory=dict)  # only when a notice is queued
    columns: bool = True  # False: only base_cols (an ack or snooze leaves the hold and modes as they are)
    stores_signal: bool = False


def _on_signal(signal: RiskSignal, alerts: Sequence[AlertRow], routing: NoticeRouting, now: datetime) -> Effects:
    row = next((a for a in alerts if a.signal_type == signal.signal_type.value), None)
    decision = decide(row.existing if row else None, signal, routing.delivery.for_risk_signal(signal, now))
    if decision is None:
        return Effects()
    step = _Step(
        signal.account_id, signal.signal_type.value, row, decision, signal.signal_id, signal, stores_signal=True
    )
    return _carry_out(step, alerts, routing, now)


def _on_timer(row: AlertRow, change: TimerFired, routing: NoticeRouting, now: datetime) -> _Step | None:
    decision = on_timer(row.existing, now, change.repeat_interval, routing.delivery.own_mode)
    if decision is None:
        return None
    n = row.reminders_sent + 1
    return _Step(
        row.account_id,
        row.signal_type,
        row,
        decision,
        f"reminder:{row.id}:{n}",
        row.last_signal,
        notice_cols={"reminders_sent": n},
    )


def _on_person(row: AlertRow, change: PersonActed, routing: NoticeRouting, now: datetime) -> _Step:
    before = row.existing
    state = apply_action(before.state, change.action)  # raises TransitionRefused
    cols: dict[str, Any] = {"state": state.value, "updated_at": now}
    if change.action is Action.ACK:
        cols.update(acknowledged_at=now, snoozed_until=None)
    elif change.action is Action.SNOOZE:
        cols["snoozed_until"] = now + change.snooze_for
    elif before.state is not AlertState.RESOLVED:
        cols.update(resolved_at=now, snoozed_until=None)
    if change.outcome is not None:
        cols.update(outcome_columns(change.outcome, change.note, change.by))
    notice = Notice.RESOLVED if "resolved_at" in cols else None
    decision = Decision(state, before.severity, notice, mode=routing.delivery.follow_up(before.seen_mode))
    ms = int(now.timestamp() * 1000)
    return _Step(
        row.account_id,
        row.signal_type,
        row,
        decision,
        f"resolve:{row.id}:{ms}",
        row.last_signal,
        base_cols=cols,
        columns=notice is not None,
    )


def _on_outcome(row: AlertRow, change: OutcomeRecorded, now: datetime) -> Effects:
    if row.existing.state is not AlertState.RESOLVED:
        raise TransitionRefused(f"an outcome is recorded on a resolved alert; this one is {row.existing.state.value}")
    cols = outcome_columns(change.outcome, change.note, change.by) | {"updated_at": now}
    return Effects((AlertWrite(row.account_id, row.signal_type, cols, row.id),))


def outcome_columns(outcome: Outcome, note: str | None, by: str | None) -> dict[str, Any]:
    return {"outcome": outcome.value, "outcome_note": note, "outcome_by": by}


def _carry_out(step: _Step, alerts: Sequence[AlertRow], routing: NoticeRouting, now: datetime) -> Effects:
    """The one copy of: hold back -> alert columns -> queue notice -> release what this alert held."""
    before = step.row.existing if step.row else None
    decision = _hold_back(step, alerts, routing.policy)
    cols = dict(step.base_cols)
    if step.columns:
        cols.update(alert_columns(decision, now))
    notices: tuple[QueuedNotice, ...] = ()
    if decision.notice is not None:
        cols.update(step.notice_cols)
        notices = (_queued(step, decision.notice, decision.mode, routing),)
    alert_id = step.row.id if step.row else None
    write = AlertWrite(step.account_id, step.signal_type, cols, alert_id, step.signal if step.stores_signal else None)
    held = ((step.signal_type, decision.held),) if decision.held and decision.inhibited_by else ()
    effects = Effects((write,), notices, held)
    if step.row is not None and before is not None and _stops_inhibiting(before, step.decision):
        after = [_with_cols(a, cols) if a.id == step.row.id else a for a in alerts]
        effects += _release_held(step.row.id, after, routing, now)
    return effects


def _queued(step: _Step, notice: Notice, mode: NoticeMode, routing: NoticeRouting) -> QueuedNotice:
    alert_id = step.row.id if step.row else None
    dests = routing.destinations(step.signal)
    return QueuedNotice(step.account_id, step.signal_type, step.cause, notice, step.signal, dests, mode, alert_id)


def _hold_back(step: _Step, alerts: Sequence[AlertRow], policy: InhibitPolicy) -> Decision:
    """The decision, with its notice held back if a critical alert of another type mutes it."""
    d = step.decision
    if d.notice is None or not policy.enabled or d.severity not in policy.targets:
        return d
    siblings = [a.sibling() for a in alerts]
    held_before = step.row.existing.held if step.row else None
    return inhibit(d, inhibitor_of(step.signal_type, d.severity, siblings, policy, d.mode), held_before)


def _stops_inhibiting(before: ExistingAlert, after: Decision) -> bool:
    return is_inhibitor(before.state, before.severity) and not is_inhibitor(after.state, after.severity)


def _release_held(source_id: int, alerts: Sequence[AlertRow], routing: NoticeRouting, now: datetime) -> Effects:
    """Send (once) what ``source_id`` held back, or pass the hold to another critical alert of the account."""
    siblings = [a.sibling() for a in alerts]
    effects = Effects()
    for row in sorted((a for a in alerts if a.inhibited_by == source_id), key=lambda a: a.id):
        e = row.existing
        inhibitor = inhibitor_of(row.signal_type, e.severity, siblings, routing.policy, e.mode)
        decision = release(e, inhibitor, routing.delivery.own_mode)
        cols: dict[str, Any] = {
            "inhibited_by": decision.inhibited_by,
            "held_notice": decision.held.value if decision.held else None,
            "updated_at": now,
        }
        notices: tuple[QueuedNotice, ...] = ()
        if decision.notice is not None:
            cols["notice_mode"] = decision.mode.value
            if decision.mode.would_be_sent:
                cols["last_notified_at"] = now
            cause = f"released:{row.id}:{source_id}:{int(now.timestamp() * 1000)}"
            step = _Step(row.account_id, row.signal_type, row, decision, cause, row.last_signal)
            notices = (_queued(step, decision.notice, decision.mode, routing),)
        effects += Effects((AlertWrite(row.account_id, row.signal_type, cols, row.id),), notices)
    return effects


def alert_columns(decision: Decision, now: datetime) -> dict[str, Any]:
    """The alert's columns after a decision."""
    cols: dict[str, Any] = {
        "state": decision.state.value,
        "severity": decision.severity.value,
        "updated_at": now,
        "inhibited_by": decision.inhibited_by,
        "held_notice": decision.held.value if decision.held else None,
    }
    told = decision.mode.would_be_sent  # shadow keeps the times a live alerter would have; quiet tells no one
    if decision.notice is not None or decision.held is not None:
        cols["notice_mode"] = decision.mode.value
    if decision.notice is not None and told:
        cols["last_notified_at"] = now
    if Notice.NEW in (decision.notice, decision.held):
        cols.update(opened_at=now, acknowledged_at=None, snoozed_until=None, resolved_at=None, reminders_sent=0)
    if decision.held is Notice.NEW or (decision.notice is Notice.NEW and not told):
        cols["last_notified_at"] = None  # reopened while inhibited, or from history: nobody has been told yet
    if decision.state is AlertState.RESOLVED:
        cols.update(resolved_at=now, snoozed_until=None)
    if decision.state is AlertState.OPEN:
        cols["snoozed_until"] = None
    return cols


def _find(alerts: Sequence[AlertRow], alert_id: int) -> AlertRow:
    for a in alerts:
        if a.id == alert_id:
            return a
    raise UnknownAlert(alert_id)


def _with_cols(row: AlertRow, cols: Mapping[str, Any]) -> AlertRow:
    """The row as it reads after ``cols`` are written (what the release after a change sees)."""
    e = row.existing
    existing = replace(
        e,
        state=AlertState(cols.get("state", e.state)),
        severity=type(e.severity)(cols.get("severity", e.severity)),
        mode=NoticeMode(cols.get("notice_mode", e.mode)),
    )
    return replace(row, existing=existing, inhibited_by=cols.get("inhibited_by", row.inhibited_by))
