"""Per-account, event-time daily buckets. Pure: no I/O, no clock.

An event lands in the bucket of the UTC day it happened (``occurred_at``), whenever it arrives. Every fold is
commutative (sums, maxima, minima, bitwise or, per-ticket pairs), so for events that arrive within the grace
period the state does not depend on the order they arrived in. An event older than the account's watermark
minus the grace period is *too late*: it is dropped and counted in ``late_events`` (and a Prometheus counter).

To stay small (well under 2 KB per account): a day is kept only if something happened on it; distinct users
and features are 256/64-bit hashed bitmaps (linear counting), kept only for the days of the current window.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import cast

from services.scorer.day_sums import DaySums, first_held, forget_day, touch_day
from services.scorer.decode import FeedbackRecord, LifecycleRecord, ScorerEvent, TicketRecord, UsageRecord
from shared.events import (
    FeedbackEvent,
    LifecycleAction,
    LifecycleEvent,
    TicketAction,
    TicketEvent,
    TicketPriority,
    UsageEvent,
)
from shared.events import UsageAction as UA

_Usage = UsageEvent | UsageRecord
_Ticket = TicketEvent | TicketRecord
_Feedback = FeedbackEvent | FeedbackRecord
_Lifecycle = LifecycleEvent | LifecycleRecord
USER_BITS = 256
FEATURE_BITS = 64
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH_DAY = _EPOCH.date()


@dataclass(frozen=True)
class WindowRules:
    """How long things are kept and how late an event may be."""

    current_days: int = 7
    baseline_days: int = 28
    horizon_days: int = 90
    grace_days: int = 7
    min_baseline_days: int = 14  # an account needs this much history before the window before counts as a baseline
    key_features: frozenset[str] = frozenset()


DEFAULT_RULES = WindowRules()


@dataclass(slots=True)
class DayBucket:
    logins: int = 0
    feature_uses: float = 0.0
    key_feature_uses: float = 0.0
    api_calls: float = 0.0
    tickets_opened: int = 0
    tickets_escalated: int = 0
    tickets_urgent: int = 0
    tickets_resolved: int = 0
    resolve_hours: float = 0.0  # summed time to resolve of tickets resolved this day whose opening we saw
    resolutions_timed: int = 0
    csat_sum: int = 0
    csat_count: int = 0
    nps_sum: int = 0
    nps_count: int = 0
    users: int = 0  # bitmap of hashed user ids (current window only)
    features: int = 0  # bitmap of hashed feature names (current window only)

    @property
    def activity(self) -> float:
        """One number for "how much was the product used that day"."""
        return self.logins + self.feature_uses + self.api_calls / 100.0


@dataclass
class AccountState:
    days: dict[date, DayBucket] = field(default_factory=dict)
    last_activity_at: datetime | None = None
    watermark: datetime | None = None  # latest event time seen for the account
    seats: tuple[int, int] | None = None  # (minute, seats) of the latest seats_changed
    latest_nps: tuple[int, int] | None = None  # (minute, score) of the latest NPS answer
    signed_up_on: date | None = None
    activated_on: date | None = None  # first onboarding milestone
    churned_on: date | None = None  # latest `lifecycle churned`
    returned_on: date | None = None  # latest `signed_up` or `renewed`: a churned account that came back
    open_tickets: dict[str, int] = field(default_factory=dict)  # ticket hash -> opened minute
    early_resolutions: dict[str, int] = field(default_factory=dict)  # resolved before its opening arrived
    late_events: int = 0
    sources: dict[str, date] = field(default_factory=dict)  # source -> the latest day it sent for the account
    sums: DaySums | None = field(default=None, compare=False, repr=False)  # a cache for day closes, never stored

    def bucket(self, day: date) -> DayBucket:
        found = self.days.get(day)
        if found is None:
            found = self.days[day] = DayBucket()
        return found


def minute_of(at: datetime) -> int:
    return int((at - _EPOCH).total_seconds() // 60)


def at_minute(minute: int) -> datetime:
    return _EPOCH + timedelta(minutes=minute)


@lru_cache(maxsize=1 << 16)  # the same users and features come back in event after event
def hash_bit(value: str, bits: int) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=4).digest(), "big") % bits


def ticket_key(ticket_id: str) -> str:
    return hashlib.blake2b(ticket_id.encode(), digest_size=5).hexdigest()


@lru_cache(maxsize=1 << 14)  # a quiet account's bitmaps stay the same close after close
def distinct_estimate(bitmap: int, bits: int) -> int:
    """Linear counting: the expected number of distinct values that set this many bits."""
    zeros = bits - bitmap.bit_count()
    if zeros == 0:
        return round(bits * math.log(bits))
    return round(-bits * math.log(zeros / bits))


def too_late(watermark: datetime | None, on: date, rules: WindowRules) -> bool:
    """An event of a day more than ``grace_days`` before the day of its account's latest event does not count."""
    return watermark is not None and (watermark.date() - on).days > rules.grace_days


def apply_event(state: AccountState, event: ScorerEvent, rules: WindowRules = DEFAULT_RULES) -> bool:
    """Fold one (already deduplicated) event into the account's state; False if it was too late to count."""
    at = event.occurred_at
    on = at.date()
    wm = state.watermark
    if too_late(wm, on, rules):
        state.late_events += 1
        return False
    previous_day = None if wm is None else wm.date()
    if wm is None or at > wm:
        state.watermark = wm = at
    wm_day = wm.date()
    if state.sums is not None:
        touch_day(state, on)
    day = state.bucket(on)
    in_current = (wm_day - on).days < rules.current_days
    if event.source is not None and on > state.sources.get(event.source, date.min):
        state.sources[event.source] = on
    if event.user_id and in_current:
        day.users |= 1 << hash_bit(event.user_id, USER_BITS)
    # by tag: the msgspec record (the scorer's decoder) and the pydantic model (the schema) fold alike
    kind = event.kind
    if kind == "usage":
        _apply_usage(state, day, cast(_Usage, event), rules, in_current)
    elif kind == "ticket":
        _apply_ticket(state, day, cast(_Ticket, event))
    elif kind == "feedback":
        _apply_feedback(state, day, cast(_Feedback, event))
    elif kind == "lifecycle":
        _apply_lifecycle(state, cast(_Lifecycle, event))
    if previous_day is None:
        prune(state, wm_day, rules)
    elif wm_day != previous_day:  # what prune drops depends only on the watermark's day
        _prune_moved(state, previous_day, wm_day, rules)
    return True


def _apply_usage(state: AccountState, day: DayBucket, event: _Usage, rules: WindowRules, in_current: bool) -> None:
    at = event.occurred_at
    if event.action is UA.SEATS_CHANGED:
        if event.seats is not None:
            state.seats = max(state.seats or (-1, -1), (minute_of(at), event.seats))
        return
    state.last_activity_at = at if state.last_activity_at is None else max(state.last_activity_at, at)
    if event.action is UA.LOGIN:
        day.logins += int(event.quantity)
    elif event.action is UA.FEATURE_USED:
        day.feature_uses += event.quantity
        if event.feature:
            if event.feature in rules.key_features:
                day.key_feature_uses += event.quantity
            if in_current:
                day.features |= 1 << hash_bit(event.feature, FEATURE_BITS)
    elif event.action is UA.API_CALLS:
        day.api_calls += event.quantity


def _apply_ticket(state: AccountState, day: DayBucket, event: _Ticket) -> None:
    key, minute = ticket_key(event.ticket_id), minute_of(event.occurred_at)
    if event.action is TicketAction.OPENED:
        day.tickets_opened += 1
        if event.priority is TicketPriority.URGENT:
            day.tickets_urgent += 1
        resolved = state.early_resolutions.pop(key, None)
        if resolved is None:
            state.open_tickets[key] = min(minute, state.open_tickets.get(key, minute))
        else:
            _time_resolution(state, key, opened=minute, resolved=resolved)
    elif event.action is TicketAction.ESCALATED:
        day.tickets_escalated += 1
    elif event.action is TicketAction.RESOLVED:
        day.tickets_resolved += 1
        if event.csat is not None:
            day.csat_sum += event.csat
            day.csat_count += 1
        opened = state.open_tickets.pop(key, None)
        if opened is None:
            state.early_resolutions[key] = min(minute, state.early_resolutions.get(key, minute))
        else:
            _time_resolution(state, key, opened=opened, resolved=minute)


def _time_resolution(state: AccountState, key: str, *, opened: int, resolved: int) -> None:
    on = at_minute(resolved).date()
    touch_day(state, on)
    day = state.bucket(on)
    day.resolve_hours += max(0, resolved - opened) / 60.0
    day.resolutions_timed += 1


def _apply_feedback(state: AccountState, day: DayBucket, event: _Feedback) -> None:
    if event.nps is not None:
        day.nps_sum += event.nps
        day.nps_count += 1
        state.latest_nps = max(state.latest_nps or (-1, -1), (minute_of(event.occurred_at), event.nps))
    if event.csat is not None:
        day.csat_sum += event.csat
        day.csat_count += 1


def _apply_lifecycle(state: AccountState, event: _Lifecycle) -> None:
    on = event.occurred_at.date()
    if event.action is LifecycleAction.SIGNED_UP:
        state.signed_up_on = on if state.signed_up_on is None else min(state.signed_up_on, on)
    elif event.action is LifecycleAction.ONBOARDING_MILESTONE:
        state.activated_on = on if state.activated_on is None else min(state.activated_on, on)
    if event.action is LifecycleAction.CHURNED:
        state.churned_on = on if state.churned_on is None else max(state.churned_on, on)
    elif event.action in (LifecycleAction.SIGNED_UP, LifecycleAction.RENEWED):
        state.returned_on = on if state.returned_on is None else max(state.returned_on, on)


def churned_by(state: AccountState, day: date) -> bool:
    """Whether the account had churned by ``day`` (and not come back since): it raises no more risk signals."""
    churned = state.churned_on
    if churned is None or churned > day:
        return False
    back = state.returned_on
    return back is None or back <= churned or back > day


def prune(state: AccountState, as_of: date, rules: WindowRules) -> None:
    """Drop what no window will read again: days past the horizon, bitmaps older than the current window."""
    oldest = as_of - timedelta(days=rules.horizon_days)
    bitmap_from = as_of - timedelta(days=rules.current_days - 1)
    gone = []
    for d, b in state.days.items():
        if d < oldest:
            gone.append(d)
        elif d < bitmap_from and (b.users or b.features):
            b.users = b.features = 0
    for d in gone:
        forget_day(state, state.days.pop(d))  # in the state's order, not by day: the first day is looked up again
    _prune_tickets(state, oldest)


def _prune_moved(state: AccountState, before: date, now: date, rules: WindowRules) -> None:
    """``prune(state, now)`` for a state already pruned at ``before``: only the days that left the horizon or
    the current window in between are touched (a replay moves the watermark day after day).

    Falls back to the full prune when that is not cheaper, or when the state holds a day ``prune(before)``
    would have dropped (the rules changed, or a grace longer than the horizon let an old event in).
    """
    moved = (now - before).days
    oldest_before = before - timedelta(days=rules.horizon_days)
    if moved >= len(state.days) or first_held(state) < oldest_before:
        prune(state, now, rules)
        return
    oldest, bitmap_from = oldest_before.toordinal(), before.toordinal() - rules.current_days + 1
    days, day_of = state.days, date.fromordinal
    for n in range(moved):  # oldest first: the days before each one dropped are already gone
        dropped = days.pop(day_of(oldest + n), None)
        if dropped is not None:
            forget_day(state, dropped, oldest + n)
        b = days.get(day_of(bitmap_from + n))
        if b is not None:
            b.users = b.features = 0
    _prune_tickets(state, now - timedelta(days=rules.horizon_days))


def _prune_tickets(state: AccountState, oldest: date) -> None:
    horizon_minute = (oldest - _EPOCH_DAY).days * 24 * 60  # minute_of(midnight UTC of ``oldest``)
    for tickets in (state.open_tickets, state.early_resolutions):
        if tickets and min(tickets.values()) < horizon_minute:
            for k in [k for k, m in tickets.items() if m < horizon_minute]:
                del tickets[k]
