"""Per-account, event-time daily buckets and the rolling windows read from them. Pure: no I/O, no clock.

An event lands in the bucket of the UTC day it happened (``occurred_at``), whenever it arrives, so the state
after a set of events does not depend on the order they arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared.events import (
    Event,
    FeedbackEvent,
    LifecycleEvent,
    TicketAction,
    TicketEvent,
    TicketPriority,
    UsageEvent,
)
from shared.events import UsageAction as UA


@dataclass
class DayBucket:
    logins: int = 0
    feature_uses: float = 0.0
    api_calls: float = 0.0
    users: set[str] = field(default_factory=set)
    features: set[str] = field(default_factory=set)
    tickets_opened: int = 0
    tickets_escalated: int = 0
    tickets_urgent: int = 0
    tickets_resolved: int = 0
    csat_sum: int = 0
    csat_count: int = 0
    nps_sum: int = 0
    nps_count: int = 0

    @property
    def activity(self) -> float:
        """One number for "how much was the product used that day"."""
        return self.logins + self.feature_uses + self.api_calls / 100.0


@dataclass
class AccountState:
    days: dict[date, DayBucket] = field(default_factory=dict)
    last_activity_at: datetime | None = None
    watermark: datetime | None = None  # latest event time seen for the account
    seats_in_use: int | None = None

    def bucket(self, day: date) -> DayBucket:
        if day not in self.days:
            self.days[day] = DayBucket()
        return self.days[day]


def apply_event(state: AccountState, event: Event) -> None:
    """Fold one (already deduplicated) event into the account's state."""
    at = event.occurred_at
    day = state.bucket(at.date())
    if event.user_id:
        day.users.add(event.user_id)
    state.watermark = at if state.watermark is None else max(state.watermark, at)
    if isinstance(event, UsageEvent):
        state.last_activity_at = at if state.last_activity_at is None else max(state.last_activity_at, at)
        if event.action is UA.LOGIN:
            day.logins += int(event.quantity)
        elif event.action is UA.FEATURE_USED:
            day.feature_uses += event.quantity
            if event.feature:
                day.features.add(event.feature)
        elif event.action is UA.API_CALLS:
            day.api_calls += event.quantity
        elif event.action is UA.SEATS_CHANGED and event.seats is not None:
            state.seats_in_use = event.seats
    elif isinstance(event, TicketEvent):
        _apply_ticket(day, event)
    elif isinstance(event, FeedbackEvent):
        if event.nps is not None:
            day.nps_sum += event.nps
            day.nps_count += 1
        if event.csat is not None:
            day.csat_sum += event.csat
            day.csat_count += 1
    elif isinstance(event, LifecycleEvent):
        pass  # lifecycle stages are tracked from account metadata for now


def _apply_ticket(day: DayBucket, event: TicketEvent) -> None:
    if event.action is TicketAction.OPENED:
        day.tickets_opened += 1
        if event.priority is TicketPriority.URGENT:
            day.tickets_urgent += 1
    elif event.action is TicketAction.ESCALATED:
        day.tickets_escalated += 1
    elif event.action is TicketAction.RESOLVED:
        day.tickets_resolved += 1
        if event.csat is not None:
            day.csat_sum += event.csat
            day.csat_count += 1


def prune(state: AccountState, as_of: date, horizon_days: int) -> None:
    oldest = as_of - timedelta(days=horizon_days)
    for d in [d for d in state.days if d < oldest]:
        del state.days[d]


@dataclass(frozen=True)
class WindowMetrics:
    """What the score and the detectors read: the current window beside its baseline."""

    as_of: date
    activity_current: float  # mean per day over the current window
    activity_baseline: float  # mean per day over the baseline window
    has_baseline: bool
    active_users_current: int
    features_current: int
    tickets_current: int
    tickets_baseline_weekly: float
    escalations_current: int
    days_since_activity: int | None

    @property
    def usage_ratio(self) -> float | None:
        if not self.has_baseline or self.activity_baseline <= 0:
            return None
        return self.activity_current / self.activity_baseline


def window_metrics(state: AccountState, as_of: date, current_days: int = 7, baseline_days: int = 28) -> WindowMetrics:
    current = [state.days.get(as_of - timedelta(days=i)) for i in range(current_days)]
    baseline = [state.days.get(as_of - timedelta(days=current_days + i)) for i in range(baseline_days)]
    cur = [b for b in current if b]
    base = [b for b in baseline if b]
    users: set[str] = set().union(*(b.users for b in cur)) if cur else set()
    features: set[str] = set().union(*(b.features for b in cur)) if cur else set()
    tickets_base = sum(b.tickets_opened for b in base)
    last = state.last_activity_at
    return WindowMetrics(
        as_of=as_of,
        activity_current=sum(b.activity for b in cur) / current_days,
        activity_baseline=sum(b.activity for b in base) / baseline_days,
        has_baseline=any(b.activity > 0 for b in base),
        active_users_current=len(users),
        features_current=len(features),
        tickets_current=sum(b.tickets_opened for b in cur),
        tickets_baseline_weekly=tickets_base * 7 / baseline_days,
        escalations_current=sum(b.tickets_escalated + b.tickets_urgent for b in cur),
        days_since_activity=None if last is None else max(0, (as_of - last.date()).days),
    )


def state_to_json(state: AccountState) -> dict[str, Any]:
    return {
        "days": {
            d.isoformat(): {
                k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(b).items() if v not in (0, 0.0, set())
            }
            for d, b in sorted(state.days.items())
        },
        "last_activity_at": state.last_activity_at.isoformat() if state.last_activity_at else None,
        "watermark": state.watermark.isoformat() if state.watermark else None,
        "seats_in_use": state.seats_in_use,
    }


def state_from_json(data: dict[str, Any]) -> AccountState:
    days = {}
    for d, fields in data.get("days", {}).items():
        kwargs: dict[str, Any] = {k: (set(v) if k in ("users", "features") else v) for k, v in fields.items()}
        b = DayBucket(**kwargs)
        days[date.fromisoformat(d)] = b
    la, wm = data.get("last_activity_at"), data.get("watermark")
    return AccountState(
        days=days,
        last_activity_at=datetime.fromisoformat(la) if la else None,
        watermark=datetime.fromisoformat(wm) if wm else None,
        seats_in_use=data.get("seats_in_use"),
    )
