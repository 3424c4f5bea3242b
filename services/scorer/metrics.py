"""The metrics read from an account's daily buckets and its profile as of one event-time day. Pure.

The current window is the ``current_days`` ending on ``as_of``; the baseline the ``baseline_days`` before it.
Usage (activity) compares complete days only: its windows end the day before ``as_of``, because the day in
progress is still filling up and would look like a drop every morning. Tickets count up to ``as_of``: support
trouble is news within the hour.
A metric that cannot be known (no baseline yet, no seats purchased, no NPS answer) is None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from services.scorer.windows import (
    DEFAULT_RULES,
    FEATURE_BITS,
    USER_BITS,
    AccountState,
    DayBucket,
    WindowRules,
    distinct_estimate,
)
from shared.accounts import AccountProfile


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
    logins_current: int = 0
    feature_uses_current: float = 0.0
    key_feature_uses_current: float = 0.0
    urgent_current: int = 0
    open_tickets: int = 0
    resolve_hours_avg: float | None = None
    csat_avg: float | None = None
    nps_latest: int | None = None
    nps_avg: float | None = None
    seats_purchased: int | None = None
    account_age_days: int | None = None
    lifecycle_stage: str | None = None
    days_to_renewal: int | None = None
    activated: bool | None = None
    late_events: int = 0

    @property
    def usage_ratio(self) -> float | None:
        if not self.has_baseline or self.activity_baseline <= 0:
            return None
        return self.activity_current / self.activity_baseline

    @property
    def seat_utilisation(self) -> float | None:
        if not self.seats_purchased:
            return None
        return min(1.5, self.active_users_current / self.seats_purchased)


def _span(state: AccountState, as_of: date, skip: int, days: int) -> list[DayBucket]:
    found = (state.days.get(as_of - timedelta(days=skip + i)) for i in range(days))
    return [b for b in found if b is not None]


def _baseline_days_covered(state: AccountState, as_of: date, rules: WindowRules) -> int:
    """Days of the baseline window on or after the account's first day with events.

    A young account's baseline is averaged over the days it existed, not over days before it had any data,
    which would make its usage look like a sudden growth (and a new account's first weeks like a drop).
    """
    if not state.days:
        return 0
    end = as_of - timedelta(days=rules.current_days + 1)
    start = max(min(state.days), end - timedelta(days=rules.baseline_days - 1))
    return max(0, (end - start).days + 1)


def _mean(total: float, count: int) -> float | None:
    return None if count == 0 else round(total / count, 2)


def window_metrics(
    state: AccountState, as_of: date, rules: WindowRules = DEFAULT_RULES, profile: AccountProfile | None = None
) -> WindowMetrics:
    cur = _span(state, as_of, 0, rules.current_days)
    base = _span(state, as_of, rules.current_days, rules.baseline_days)
    # usage over complete days: both windows shifted back by the day in progress
    usage_cur = _span(state, as_of, 1, rules.current_days)
    usage_base = _span(state, as_of, rules.current_days + 1, rules.baseline_days)
    both = cur + base
    users = features = 0
    for b in cur:
        users, features = users | b.users, features | b.features
    last = state.last_activity_at
    all_days = list(state.days.values())
    covered = _baseline_days_covered(state, as_of, rules)
    metrics = WindowMetrics(
        as_of=as_of,
        activity_current=sum(b.activity for b in usage_cur) / rules.current_days,
        activity_baseline=sum(b.activity for b in usage_base) / covered if covered else 0.0,
        has_baseline=covered >= min(rules.min_baseline_days, rules.baseline_days)
        and any(b.activity > 0 for b in usage_base),
        active_users_current=distinct_estimate(users, USER_BITS),
        features_current=distinct_estimate(features, FEATURE_BITS),
        tickets_current=sum(b.tickets_opened for b in cur),
        tickets_baseline_weekly=sum(b.tickets_opened for b in base) * 7 / covered if covered else 0.0,
        escalations_current=sum(b.tickets_escalated + b.tickets_urgent for b in cur),
        days_since_activity=None if last is None else max(0, (as_of - last.date()).days),
        logins_current=sum(b.logins for b in cur),
        feature_uses_current=sum(b.feature_uses for b in cur),
        key_feature_uses_current=sum(b.key_feature_uses for b in cur),
        urgent_current=sum(b.tickets_urgent for b in cur),
        open_tickets=len(state.open_tickets),
        resolve_hours_avg=_mean(sum(b.resolve_hours for b in both), sum(b.resolutions_timed for b in both)),
        csat_avg=_mean(sum(b.csat_sum for b in both), sum(b.csat_count for b in both)),
        nps_latest=state.latest_nps[1] if state.latest_nps else None,
        nps_avg=_mean(sum(b.nps_sum for b in all_days), sum(b.nps_count for b in all_days)),
        late_events=state.late_events,
    )
    return replace(metrics, **_profile_metrics(state, as_of, profile))


def _profile_metrics(state: AccountState, as_of: date, profile: AccountProfile | None) -> dict[str, Any]:
    started = state.signed_up_on
    if profile is not None and profile.created_date is not None:
        started = profile.created_date
    seats = profile.seats_purchased if profile else None
    if state.seats is not None and not seats:
        seats = state.seats[1]
    renewal = profile.renewal_date if profile else None
    return {
        "seats_purchased": seats,
        "account_age_days": None if started is None else max(0, (as_of - started).days),
        "lifecycle_stage": profile.lifecycle_stage.value if profile else None,
        "days_to_renewal": None if renewal is None else (renewal - as_of).days,
        "activated": None if started is None else state.activated_on is not None,
    }
