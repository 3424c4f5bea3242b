"""The metrics read from an account's daily buckets and its profile as of one event-time day. Pure.

The current window is the ``current_days`` ending on ``as_of``; the baseline the ``baseline_days`` before it.
Usage (activity) compares complete days only: its windows end the day before ``as_of``, because the day in
progress is still filling up and would look like a drop every morning; at a day's close (``day_complete``) the
day itself is complete and the windows end on it. Tickets count up to ``as_of``: support trouble is news within
the hour.
A metric that cannot be known (no baseline yet, no seats purchased, no NPS answer) is None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.scorer.windows import (
    DEFAULT_RULES,
    FEATURE_BITS,
    USER_BITS,
    AccountState,
    WindowRules,
    distinct_estimate,
)
from shared.accounts import AccountProfile, LifecycleStage


@dataclass(slots=True)  # read-only by convention: built at every close and tip, and a frozen one is 4x slower to build
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
    observed_days: int = 0  # days since the first day with data (within the horizon): how much there is to judge

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


def _baseline_days_covered(state: AccountState, as_of: date, rules: WindowRules, usage_lag: int) -> int:
    """Days of the baseline window on or after the account's first day with events.

    A young account's baseline is averaged over the days it existed, not over days before it had any data,
    which would make its usage look like a sudden growth (and a new account's first weeks like a drop).
    """
    if not state.days:
        return 0
    end = as_of - timedelta(days=rules.current_days + usage_lag)
    start = max(min(state.days), end - timedelta(days=rules.baseline_days - 1))
    return max(0, (end - start).days + 1)


def _mean(total: float, count: int) -> float | None:
    return None if count == 0 else round(total / count, 2)


def window_metrics(
    state: AccountState,
    as_of: date,
    rules: WindowRules = DEFAULT_RULES,
    profile: AccountProfile | None = None,
    *,
    day_complete: bool = False,
) -> WindowMetrics:
    cur_days, base_days = rules.current_days, rules.baseline_days
    lag = 0 if day_complete else 1  # usage windows end this many days before ``as_of``
    # One pass over the days up to cur_days + base_days back from ``as_of``, newest first: a fixed order, so
    # float sums do not depend on the order events arrived in. Day n back is in the current window for
    # n < cur_days, in the baseline for cur_days <= n < cur_days + base_days; usage windows end ``lag`` days
    # earlier.
    act_cur = act_base = feature_uses = key_uses = resolve_hours = 0.0
    tickets_cur = tickets_base = escalations = urgent = logins = timed = csat_sum = csat_n = 0
    users = features = 0
    base_active = False
    today, span = as_of.toordinal(), cur_days + base_days - 1 + lag
    in_reach = sorted((n, b) for d, b in state.days.items() if 0 <= (n := today - d.toordinal()) <= span)
    for n, b in in_reach:
        if lag <= n < cur_days + lag:
            act_cur += b.activity
        elif n >= cur_days + lag:
            activity = b.activity
            act_base += activity
            base_active = base_active or activity > 0
        if n == cur_days + base_days:
            continue
        if n < cur_days:
            users, features = users | b.users, features | b.features
            tickets_cur += b.tickets_opened
            escalations += b.tickets_escalated + b.tickets_urgent
            urgent += b.tickets_urgent
            logins += b.logins
            feature_uses += b.feature_uses
            key_uses += b.key_feature_uses
        else:
            tickets_base += b.tickets_opened
        resolve_hours += b.resolve_hours
        timed += b.resolutions_timed
        csat_sum += b.csat_sum
        csat_n += b.csat_count
    nps_sum = nps_n = 0
    for b in state.days.values():
        nps_sum += b.nps_sum
        nps_n += b.nps_count
    last = state.last_activity_at
    covered = _baseline_days_covered(state, as_of, rules, lag)
    return WindowMetrics(
        as_of=as_of,
        activity_current=act_cur / cur_days,
        activity_baseline=act_base / covered if covered else 0.0,
        has_baseline=covered >= min(rules.min_baseline_days, base_days) and base_active,
        active_users_current=distinct_estimate(users, USER_BITS),
        features_current=distinct_estimate(features, FEATURE_BITS),
        tickets_current=tickets_cur,
        tickets_baseline_weekly=tickets_base * 7 / covered if covered else 0.0,
        escalations_current=escalations,
        days_since_activity=None if last is None else max(0, (as_of - last.date()).days),
        logins_current=logins,
        feature_uses_current=feature_uses,
        key_feature_uses_current=key_uses,
        urgent_current=urgent,
        open_tickets=len(state.open_tickets),
        resolve_hours_avg=_mean(resolve_hours, timed),
        csat_avg=_mean(csat_sum, csat_n),
        nps_latest=state.latest_nps[1] if state.latest_nps else None,
        nps_avg=_mean(nps_sum, nps_n),
        late_events=state.late_events,
        observed_days=max(0, today - min(state.days).toordinal() + 1) if state.days else 0,
        **_profile_metrics(state, as_of, profile),
    )


def _profile_metrics(state: AccountState, as_of: date, profile: AccountProfile | None) -> dict[str, Any]:
    return dict(zip(PROFILE_FIELDS, profile_values(state, as_of, profile), strict=True))


PROFILE_FIELDS = ("seats_purchased", "account_age_days", "lifecycle_stage", "days_to_renewal", "activated")


def profile_values(state: AccountState, as_of: date, profile: AccountProfile | None) -> ProfileValues:
    """The metrics of ``PROFILE_FIELDS``, in that order."""
    started = state.signed_up_on
    if profile is None:
        seats = None if state.seats is None else state.seats[1]
        age = None if started is None else max(0, (as_of - started).days)
        return seats, age, None, None, _activated(state, started, profile)
    if profile.created_date is not None:
        started = profile.created_date
    seats = profile.seats_purchased
    if state.seats is not None and not seats:
        seats = state.seats[1]
    renewal = profile.renewal_date
    return (
        seats,
        None if started is None else max(0, (as_of - started).days),
        profile.lifecycle_stage.value,
        None if renewal is None else (renewal - as_of).days,
        _activated(state, started, profile),
    )


ProfileValues = tuple[int | None, int | None, str | None, int | None, bool | None]


def _activated(state: AccountState, started: date | None, profile: AccountProfile | None) -> bool | None:
    """Known only where it can be: an account that reported a milestone is activated; one in the onboarding stage
    that has not is not. Otherwise nothing says the product sends milestones at all (many send none), and an old
    account with none is not "not activated": it is unknown."""
    if state.activated_on is not None:
        return True
    if started is None or profile is None or profile.lifecycle_stage is not LifecycleStage.ONBOARDING:
        return None
    return False
