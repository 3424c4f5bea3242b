"""The core's inputs and outputs as data: the account's alerts, a change, and the effects. Pure.

A change is a signal that arrived, the scheduler's timer for one alert, a person's ack / snooze / resolve or
outcome, or a hold whose critical alert is gone. Effects are what store.apply_effects writes: alert rows,
notices to queue (with destinations and mode), and the notices an inhibition holds back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.alerter.lifecycle import Action, ExistingAlert, InhibitPolicy, Notice, Outcome, SiblingAlert
from services.alerter.notice_mode import DeliveryPolicy, NoticeMode
from services.alerter.routing import Addresses, Destination, RoutingRules, route_signal
from shared.signals import RiskSignal


@dataclass(frozen=True)
class NoticeRouting:
    """Where an alert's notices go, what may hold them back, and whether they are sent or only recorded."""

    rules: RoutingRules
    addresses: Addresses
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    @property
    def policy(self) -> InhibitPolicy:
        return self.rules.inhibit.policy()

    def destinations(self, signal: RiskSignal) -> tuple[Destination, ...]:
        return tuple(route_signal(signal, self.rules, self.addresses))


@dataclass(frozen=True)
class AlertRow:
    """One stored alert as the core sees it (store.py reads it; its signal was validated when it arrived)."""

    id: int
    account_id: str
    signal_type: str
    existing: ExistingAlert
    last_signal: RiskSignal
    inhibited_by: int | None = None
    reminders_sent: int = 0

    def sibling(self) -> SiblingAlert:
        e = self.existing
        return SiblingAlert(self.id, self.signal_type, e.state, e.severity, e.mode)


@dataclass(frozen=True)
class SignalArrived:
    signal: RiskSignal


@dataclass(frozen=True)
class TimerFired:
    """The scheduler found this alert due: a reminder, or a snooze that expired."""

    alert_id: int
    repeat_interval: timedelta | None


@dataclass(frozen=True)
class PersonActed:
    alert_id: int
    action: Action
    snooze_for: timedelta
    outcome: Outcome | None = None
    note: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class HoldEnded:
    """The alert ``source_id`` no longer inhibits (found by the scheduler's sweep): release what it held."""

    source_id: int


@dataclass(frozen=True)
class OutcomeRecorded:
    """A person says what became of the account, after the alert was resolved."""

    alert_id: int
    outcome: Outcome
    note: str | None = None
    by: str | None = None


Change = SignalArrived | TimerFired | PersonActed | HoldEnded | OutcomeRecorded


@dataclass(frozen=True)
class AlertWrite:
    """New column values for one alert. ``signal`` is stored as its latest signal (and creates it if new)."""

    account_id: str
    signal_type: str
    cols: Mapping[str, Any]
    alert_id: int | None = None
    signal: RiskSignal | None = None


@dataclass(frozen=True)
class QueuedNotice:
    """A notice to put in the outbox: one row per destination (or a digest item), idempotent per cause."""

    account_id: str
    signal_type: str
    cause: str
    notice: Notice
    signal: RiskSignal
    destinations: tuple[Destination, ...]
    mode: NoticeMode
    alert_id: int | None = None


@dataclass(frozen=True)
class Effects:
    writes: tuple[AlertWrite, ...] = ()
    notices: tuple[QueuedNotice, ...] = ()
    held: tuple[tuple[str, Notice], ...] = ()  # (signal type, notice) an inhibition holds back

    def __add__(self, other: Effects) -> Effects:
        return Effects(self.writes + other.writes, self.notices + other.notices, self.held + other.held)


class UnknownAlert(LookupError):
    """The change names an alert that is not among the account's alerts."""
