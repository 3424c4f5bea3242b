"""What a churn-risk model reads about one account at one day close: named raw features. Pure, stdlib only.

``risk_inputs`` reads the scorer's own state (services/scorer/windows.py) as of the close of a complete day:
levels, trends and per-seat figures over 7, 28 and 90 days ending on that day. The features are
model-independent: a model (services/scorer/risk_model.py) transforms, compares with peers and weighs them.

A feature that cannot be known is None, never a guess: per-seat figures without a seat count, a ratio without
a denominator, NPS without an answer. Averages over a window count only the days since the account was first
seen (its start, or its first day with events), so a young account, or one whose history starts at a backfill,
is not read as a slump. Distinct users and features exist for the current 7-day window only (the state keeps
their bitmaps for that window alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from services.scorer.windows import FEATURE_BITS, USER_BITS, AccountState, WindowRules, distinct_estimate
from shared.accounts import AccountProfile

FEATURE_VERSION = 1
WEEKS_KEPT = 8  # weekly activity per seat, newest first, for "weeks low"
WINDOWS = (7, 28, 90)

FEATURE_NAMES: tuple[str, ...] = (
    *(f"activity_{w}d" for w in WINDOWS),
    *(f"logins_{w}d" for w in WINDOWS),
    *(f"activity_per_seat_{w}d" for w in WINDOWS),
    *(f"logins_per_seat_{w}d" for w in WINDOWS),
    "uses_per_login_28d",
    "activity_ratio_7_28",
    "activity_ratio_28_90",
    "active_users_7d",
    "seat_use_7d",
    "features_7d",
    *(f"tickets_{w}d" for w in WINDOWS),
    "tickets_per_seat_90d",
    "escalations_28d",
    "urgent_28d",
    "escalations_90d",
    "urgent_90d",
    "open_tickets",
    "resolve_hours_90d",
    "days_since_activity",
    "nps_latest",
    "nps_known",
    "csat_avg_90d",
    "csat_known",
    "account_age_days",
    "days_to_renewal",
    "seats",
)


@dataclass(frozen=True)
class RiskInputs:
    """What a model reads about one account at one day close."""

    values: dict[str, float | None]  # FEATURE_NAMES -> value; None = unknown
    weekly_activity_per_seat: tuple[float, ...]  # complete weeks ending on the day, newest first (up to 8)
    plan: str | None
    observed_days: int = 0  # days since first seen, this one included (the horizon caps what the state recalls)


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return None if not denominator else numerator / denominator


def _start_of(state: AccountState, profile: AccountProfile | None) -> date | None:
    if profile is not None and profile.created_date is not None:
        return profile.created_date
    return state.signed_up_on


def _seats_of(state: AccountState, profile: AccountProfile | None) -> int | None:
    seats = profile.seats_purchased if profile else None
    if not seats and state.seats is not None:
        seats = state.seats[1]
    return seats or None


_BUCKETS = 13  # weeks 0..11 back, then the 6 days 84..89 back: the 90-day window


@dataclass
class _Buckets:
    """Sums per week back from the day (index n // 7; the last holds days 84-89 back)."""

    activity: list[float]
    logins: list[float]
    uses: list[float]
    tickets: list[int]  # per window (7, 28, 90): tickets opened, escalated, urgent
    support: list[float]  # over 90 days: resolve hours, resolutions timed, csat sum, csat count
    users: int = 0
    features: int = 0


def _buckets(state: AccountState, today: int) -> _Buckets:
    activity, logins, uses = [0.0] * _BUCKETS, [0.0] * _BUCKETS, [0.0] * _BUCKETS
    tickets, support = [0] * 9, [0.0] * 4
    users = features = 0
    for d, b in state.days.items():
        n = today - d.toordinal()
        if not 0 <= n < 90:
            continue
        k = n // 7  # 12 holds days 84-89
        day_logins, day_uses = b.logins, b.feature_uses
        activity[k] += day_logins + day_uses + b.api_calls / 100.0
        logins[k] += day_logins
        uses[k] += day_uses
        if k == 0:
            users |= b.users
            features |= b.features
        if b.tickets_opened or b.tickets_escalated or b.resolutions_timed or b.csat_count:
            row = (b.tickets_opened, b.tickets_escalated, b.tickets_urgent)
            for w, limit in enumerate(WINDOWS):
                if n < limit:
                    for i, x in enumerate(row):
                        tickets[3 * w + i] += x
            support[0] += b.resolve_hours
            support[1] += b.resolutions_timed
            support[2] += b.csat_sum
            support[3] += b.csat_count
    return _Buckets(activity, logins, uses, tickets, support, users, features)


def _first_seen(state: AccountState, day: date, start: date | None) -> date:
    """From when the account is observed: its start, unless its history (a backfill's) begins later."""
    first = min(state.days) if state.days else (start or day)
    return start if start is not None and start > first else first


def risk_inputs(state: AccountState, day: date, profile: AccountProfile | None, rules: WindowRules) -> RiskInputs:
    """The raw features as of the close of ``day`` (complete): every window ends on it, ``day`` included.
    ``rules`` is the scorer's: windows longer than its horizon are cut to it."""
    today = day.toordinal()
    b = _buckets(state, today)
    start = _start_of(state, profile)
    lived = max(1, today - _first_seen(state, day, start).toordinal() + 1)
    seats = _seats_of(state, profile)
    v: dict[str, float | None] = {}
    means = []
    for w, (weeks, limit) in enumerate(((1, 7), (4, 28), (_BUCKETS, 90))):
        days = min(limit, lived, rules.horizon_days)
        activity, logins = sum(b.activity[:weeks]) / days, sum(b.logins[:weeks]) / days
        means.append(activity)
        v[f"activity_{limit}d"], v[f"logins_{limit}d"] = activity, logins
        v[f"activity_per_seat_{limit}d"] = _ratio(activity, seats)
        v[f"logins_per_seat_{limit}d"] = _ratio(logins, seats)
        v[f"tickets_{limit}d"] = b.tickets[3 * w]
    v["uses_per_login_28d"] = _ratio(sum(b.uses[:4]), sum(b.logins[:4]))
    v["activity_ratio_7_28"] = _ratio(means[0], means[1])
    v["activity_ratio_28_90"] = _ratio(means[1], means[2])
    active_users = distinct_estimate(b.users, USER_BITS)
    v["active_users_7d"] = active_users
    v["seat_use_7d"] = None if seats is None else min(1.5, active_users / seats)
    v["features_7d"] = distinct_estimate(b.features, FEATURE_BITS)
    v["tickets_per_seat_90d"] = _ratio(b.tickets[6], seats)
    v["escalations_28d"], v["urgent_28d"] = b.tickets[4], b.tickets[5]
    v["escalations_90d"], v["urgent_90d"] = b.tickets[7], b.tickets[8]
    v["open_tickets"] = len(state.open_tickets)
    v["resolve_hours_90d"] = _ratio(b.support[0], b.support[1])
    v["csat_avg_90d"] = _ratio(b.support[2], b.support[3])
    v["csat_known"] = 1.0 if b.support[3] else 0.0
    _add_profile_features(v, state, day, profile, start)
    v["seats"] = seats
    complete = min(WEEKS_KEPT, lived // 7)
    weekly = () if seats is None else tuple(b.activity[k] / 7 / seats for k in range(complete))
    return RiskInputs(v, weekly, profile.plan if profile else None, lived)


def _add_profile_features(
    v: dict[str, float | None], state: AccountState, day: date, profile: AccountProfile | None, start: date | None
) -> None:
    last = state.last_activity_at
    v["days_since_activity"] = None if last is None else max(0, (day - last.date()).days)
    nps = state.latest_nps
    v["nps_latest"] = None if nps is None else nps[1]
    v["nps_known"] = 0.0 if nps is None else 1.0
    v["account_age_days"] = None if start is None else max(0, (day - start).days)
    renewal = profile.renewal_date if profile else None
    v["days_to_renewal"] = None if renewal is None else (renewal - day).days


def _count(n: float, thing: str) -> str:
    k = round(n)
    return f"{k} {thing if k == 1 else thing + 's'}"


_WORDS: dict[str, Callable[[float], str]] = {
    "activity_ratio_7_28": lambda x: f"activity {round((x - 1) * 100):+d}% vs the last 28 days",
    "activity_ratio_28_90": lambda x: f"activity {round((x - 1) * 100):+d}% over 28 days vs 90",
    "seat_use_7d": lambda x: f"{round(x * 100)}% of seats active this week",
    "active_users_7d": lambda x: f"{_count(x, 'active user')} this week",
    "features_7d": lambda x: f"{_count(x, 'feature')} used this week",
    "uses_per_login_28d": lambda x: f"{x:.1f} feature uses per login",
    "tickets_7d": lambda x: f"{_count(x, 'ticket')} opened this week",
    "tickets_28d": lambda x: f"{_count(x, 'ticket')} opened in 28 days",
    "tickets_90d": lambda x: f"{_count(x, 'ticket')} opened in 90 days",
    "tickets_per_seat_90d": lambda x: f"{x:.2f} tickets per seat in 90 days",
    "escalations_28d": lambda x: f"{_count(x, 'escalation')} in 28 days",
    "urgent_28d": lambda x: f"{_count(x, 'urgent ticket')} in 28 days",
    "escalations_90d": lambda x: f"{_count(x, 'escalation')} in 90 days",
    "urgent_90d": lambda x: f"{_count(x, 'urgent ticket')} in 90 days",
    "open_tickets": lambda x: f"{_count(x, 'open ticket')}",
    "resolve_hours_90d": lambda x: f"tickets take {x:.0f} h to resolve",
    "days_since_activity": lambda x: f"last active {_count(x, 'day')} ago",
    "nps_latest": lambda x: f"NPS {round(x)}",
    "nps_known": lambda x: "no NPS answer" if x == 0 else "NPS answered",
    "csat_avg_90d": lambda x: f"CSAT {x:.1f}",
    "csat_known": lambda x: "no CSAT answer in 90 days" if x == 0 else "CSAT answered",
    "account_age_days": lambda x: f"account {_count(x, 'day')} old",
    "days_to_renewal": lambda x: f"renewal in {_count(x, 'day')}" if x >= 0 else f"renewal {_count(-x, 'day')} ago",
    "seats": lambda x: f"{_count(x, 'seat')}",
}


def describe_feature(name: str, x: float) -> str:
    """A feature's value in the words the health explanations use, e.g. "3 urgent tickets in 28 days"."""
    words = _WORDS.get(name)
    if words is not None:
        return words(x)
    for w in WINDOWS:  # activity_7d, logins_per_seat_28d, ...
        if name.endswith(f"_{w}d"):
            what = name.removesuffix(f"_{w}d").replace("_", " ")
            return f"{what} {x:.2f} a day over {w} days"
    return f"{name.replace('_', ' ')} {x:g}"
