"""The metrics and churn-risk features at a day close and at the tip, read from the rolling sums. Pure.

``close_metrics``, ``tip_metrics`` and ``close_risk_inputs`` give what ``metrics.window_metrics`` (complete day or
day in progress) and ``risk_features.risk_inputs`` give, to the bit, reading each window from
``day_sums.DaySums`` in O(1) where the sums hold, and calling those functions where they do not (see day_sums.py).
The tip is scored on the day after the latest close: its usage windows are that close's, its current window of
tickets and feature use adds the day in progress, read from its bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.scorer.day_sums import DaySums, fractional, recent_bitmaps, sums_through
from services.scorer.metrics import WindowMetrics, profile_values, window_metrics
from services.scorer.risk_features import (
    WEEKS_KEPT,
    WINDOWS,
    RiskInputs,
    _add_profile_features,
    _ratio,
    _seats_of,
    _start_of,
    risk_inputs,
)
from services.scorer.windows import FEATURE_BITS, USER_BITS, AccountState, DayBucket, WindowRules, distinct_estimate
from shared.accounts import AccountProfile

# what ``close_risk_inputs`` cannot read from the sums: a float added over days in the state's own order
NOT_FROM_SUMS = frozenset({"resolve_hours_90d"})
# the groups of features read together (the rest are read always: they cost next to nothing)
_USAGE = frozenset(
    {*(f"{what}_{w}d" for what in ("activity", "logins", "activity_per_seat", "logins_per_seat") for w in WINDOWS)}
    | {"uses_per_login_28d", "activity_ratio_7_28", "activity_ratio_28_90"}
)
_RECENT = frozenset({"active_users_7d", "seat_use_7d", "features_7d"})
_SUPPORT = frozenset(
    {*(f"tickets_{w}d" for w in WINDOWS), "tickets_per_seat_90d", "escalations_28d", "urgent_28d", "escalations_90d"}
    | {"urgent_90d", "csat_avg_90d", "csat_known"}
)
_WINDOW_KEYS = tuple(
    (w, f"activity_{w}d", f"logins_{w}d", f"activity_per_seat_{w}d", f"logins_per_seat_{w}d", f"tickets_{w}d")
    for w in WINDOWS
)


@dataclass(slots=True)
class _Recent:
    """What the current window (ending on the day scored) and the support reach add up to."""

    logins: float = 0.0
    uses: float = 0.0
    key_uses: float = 0.0
    users: int = 0
    features: int = 0
    tickets_cur: int = 0
    tickets_base: int = 0
    escalations: int = 0
    urgent: int = 0
    resolve_hours: float = 0.0
    timed: int = 0
    csat_sum: int = 0
    csat_n: int = 0
    nps_sum: int = 0
    nps_n: int = 0

    def add_support(self, b: DayBucket, current: bool) -> None:
        if current:
            self.tickets_cur += b.tickets_opened
            self.escalations += b.tickets_escalated + b.tickets_urgent
            self.urgent += b.tickets_urgent
        else:
            self.tickets_base += b.tickets_opened
        self.resolve_hours += b.resolve_hours
        self.timed += b.resolutions_timed
        self.csat_sum += b.csat_sum
        self.csat_n += b.csat_count


def close_metrics(
    state: AccountState, as_of: date, rules: WindowRules, profile: AccountProfile | None = None
) -> WindowMetrics:
    """``window_metrics(state, as_of, rules, profile, day_complete=True)``."""
    s = sums_through(state, as_of, rules)
    if s is None:
        return window_metrics(state, as_of, rules, profile, day_complete=True)
    o, cur = s.anchor, rules.current_days
    r = _Recent()
    top = o - s.origin + 1  # ``s.total`` of the current window: the prefixes at top and top - cur
    r.logins, r.uses = s.logins[top] - s.logins[top - cur], s.uses[top] - s.uses[top - cur]
    r.key_uses = s.key_uses[top] - s.key_uses[top - cur]
    r.users, r.features = s.bitmaps(state, cur)
    reach = o - cur - rules.baseline_days + 1
    _support(state, s, r, reach, o - cur + 1)
    r.nps_sum, r.nps_n = s.nps_totals(state)
    return _metrics(state, as_of, rules, profile, s, r)


def tip_metrics(
    state: AccountState, as_of: date, rules: WindowRules, profile: AccountProfile | None = None
) -> WindowMetrics:
    """``window_metrics(state, as_of, rules, profile)``: the day in progress, on top of the day before's sums."""
    s = sums_through(state, date.fromordinal(as_of.toordinal() - 1), rules, ahead=1, build=False)
    today = state.days.get(as_of)
    if s is None or (today is not None and fractional(0.0, today.feature_uses, today.key_feature_uses)):
        return window_metrics(state, as_of, rules, profile)
    o, cur = s.anchor, rules.current_days
    r = _Recent()  # newest first, as window_metrics adds: the day in progress, then the days of the sums
    if today is not None:
        r.logins, r.uses, r.key_uses = 0.0 + today.logins, 0.0 + today.feature_uses, 0.0 + today.key_feature_uses
        r.add_support(today, True)
        r.nps_sum, r.nps_n = today.nps_sum, today.nps_count
    r.logins += s.total(s.logins, o - cur + 2, o)
    r.uses += s.total(s.uses, o - cur + 2, o)
    r.key_uses += s.total(s.key_uses, o - cur + 2, o)
    users, features = recent_bitmaps(state, o, cur - 1)
    r.users, r.features = users | (today.users if today else 0), features | (today.features if today else 0)
    _support(state, s, r, o - cur - rules.baseline_days + 2, o - cur + 2)
    nps_sum, nps_n = s.nps_totals(state)
    r.nps_sum, r.nps_n = r.nps_sum + nps_sum, r.nps_n + nps_n
    return _metrics(state, as_of, rules, profile, s, r)


def _support(state: AccountState, s: DaySums, r: _Recent, reach: int, current_from: int) -> None:
    held, day_of = state.days, date.fromordinal
    for q in s.support_days(reach):
        b = held.get(day_of(q))
        if b is not None:
            r.add_support(b, q >= current_from)


def _metrics(
    state: AccountState, as_of: date, rules: WindowRules, profile: AccountProfile | None, s: DaySums, r: _Recent
) -> WindowMetrics:
    """The metrics of ``as_of``, whose usage windows end on the sums' anchor (the last complete day)."""
    o, cur_days, base_days = s.anchor, rules.current_days, rules.baseline_days
    activity, top = s.activity, o - s.origin + 1  # ``s.total`` of days ending on o - k: [top - k] - [top - k - n]
    act_base = activity[top - cur_days] - activity[top - cur_days - base_days]
    first = s.first_day(state)
    end = o - cur_days
    covered = max(0, end - max(first, end - base_days + 1) + 1)
    last = state.last_activity_at
    latest_nps = state.latest_nps
    seats, age, stage, renewal, activated = profile_values(state, as_of, profile)
    as_of_day = as_of.toordinal()
    return WindowMetrics(  # positional, in the order of its fields (a third of the cost of keywords)
        as_of,
        (activity[top] - activity[top - cur_days]) / cur_days,
        act_base / covered if covered else 0.0,
        covered >= min(rules.min_baseline_days, base_days) and act_base > 0,
        distinct_estimate(r.users, USER_BITS),
        distinct_estimate(r.features, FEATURE_BITS),
        r.tickets_cur,
        r.tickets_base * 7 / covered if covered else 0.0,
        r.escalations,
        None if last is None else max(0, as_of_day - last.toordinal()),
        int(r.logins),
        r.uses,
        r.key_uses,
        r.urgent,
        len(state.open_tickets),
        None if r.timed == 0 else round(r.resolve_hours / r.timed, 2),  # _mean, inlined
        None if r.csat_n == 0 else round(r.csat_sum / r.csat_n, 2),
        latest_nps[1] if latest_nps else None,
        None if r.nps_n == 0 else round(r.nps_sum / r.nps_n, 2),
        seats,
        age,
        stage,
        renewal,
        activated,
        state.late_events,
        max(0, as_of_day - first + 1),
    )


def close_risk_inputs(
    state: AccountState, day: date, profile: AccountProfile | None, rules: WindowRules, needed: frozenset[str]
) -> RiskInputs:
    """``risk_inputs(state, day, profile, rules)`` where the ``needed`` features are all ones the sums give (every
    feature but ``NOT_FROM_SUMS``); of its values, those of the groups the ``needed`` ones are in."""
    usage, recent, support, not_from_sums = _groups_of(needed)
    s = None if not_from_sums else sums_through(state, day, rules)
    if s is None:
        return risk_inputs(state, day, profile, rules)
    o = s.anchor
    start = _start_of(state, profile)
    first = s.first_day(state)
    seen = start.toordinal() if start is not None and start.toordinal() > first else first
    lived = max(1, o - seen + 1)
    seats = _seats_of(state, profile)
    v: dict[str, float | None] = {}
    if usage:
        _add_usage_features(v, s, lived, seats, rules)
    if recent:
        users, features = s.bitmaps(state, 7)
        active_users = distinct_estimate(users, USER_BITS)
        v["active_users_7d"] = active_users
        v["seat_use_7d"] = None if seats is None else min(1.5, active_users / seats)
        v["features_7d"] = distinct_estimate(features, FEATURE_BITS)
    if support:
        _add_support_features(v, state, s, seats)
    v["open_tickets"] = len(state.open_tickets)
    _add_profile_features(v, state, day, profile, start)
    v["seats"] = seats
    weekly: tuple[float, ...] = ()
    if seats is not None:  # the weeks' sums: ``s.total`` of days o - 7k - 6 .. o - 7k
        prefix, top = s.activity, o - s.origin + 1
        weekly = tuple(
            (prefix[i] - prefix[i - 7]) / 7 / seats for i in range(top, top - 7 * min(WEEKS_KEPT, lived // 7), -7)
        )
    return RiskInputs(v, weekly, profile.plan if profile else None, lived)


_GROUPS: dict[frozenset[str], tuple[bool, bool, bool, bool]] = {}


def _groups_of(needed: frozenset[str]) -> tuple[bool, bool, bool, bool]:
    """Whether ``needed`` reads the usage, recent and support groups, and a feature the sums do not give."""
    found = _GROUPS.get(needed)
    if found is None:
        if len(_GROUPS) > 16:
            _GROUPS.clear()
        found = _GROUPS[needed] = (
            bool(needed & _USAGE),
            bool(needed & _RECENT),
            bool(needed & _SUPPORT),
            bool(needed & NOT_FROM_SUMS),
        )
    return found


def _add_usage_features(
    v: dict[str, float | None], s: DaySums, lived: int, seats: int | None, rules: WindowRules
) -> None:
    """Each window's sum is ``s.total`` of the days ending on the anchor, read from the prefixes directly."""
    top = s.anchor - s.origin + 1  # the prefix index summing up to the anchor
    activity_sums, login_sums = s.activity, s.logins
    activity_top, logins_top = activity_sums[top], login_sums[top]
    most = min(lived, rules.horizon_days)
    means = []
    for limit, activity_key, logins_key, activity_seat_key, logins_seat_key, _ in _WINDOW_KEYS:
        days = limit if limit < most else most
        activity = (activity_top - activity_sums[top - limit]) / days
        logins = (logins_top - login_sums[top - limit]) / days
        means.append(activity)
        v[activity_key], v[logins_key] = activity, logins
        if seats:
            v[activity_seat_key], v[logins_seat_key] = activity / seats, logins / seats
        else:
            v[activity_seat_key] = v[logins_seat_key] = None
    uses = s.uses[top] - s.uses[top - 28]
    v["uses_per_login_28d"] = _ratio(uses, logins_top - login_sums[top - 28])
    v["activity_ratio_7_28"] = _ratio(means[0], means[1])
    v["activity_ratio_28_90"] = _ratio(means[1], means[2])


def _add_support_features(v: dict[str, float | None], state: AccountState, s: DaySums, seats: int | None) -> None:
    """Tickets over 7, 28 and 90 days and CSAT over 90, from the few days with support data (whole numbers)."""
    opened, escalated, urgent = [0, 0, 0], [0, 0, 0], [0, 0, 0]  # per window: 7, 28, 90 days
    csat_sum = csat_count = 0
    held, o = state.days, s.anchor
    for q in s.support_days(o - 89):
        b = held.get(date.fromordinal(q))
        if b is None:
            continue
        n = o - q
        for w in (0, 1, 2) if n < 7 else (1, 2) if n < 28 else (2,):
            opened[w] += b.tickets_opened
            escalated[w] += b.tickets_escalated
            urgent[w] += b.tickets_urgent
        csat_sum += b.csat_sum
        csat_count += b.csat_count
    for w, keys in enumerate(_WINDOW_KEYS):
        v[keys[5]] = opened[w]
    v["tickets_per_seat_90d"] = _ratio(opened[2], seats)
    v["escalations_28d"], v["urgent_28d"] = escalated[1], urgent[1]
    v["escalations_90d"], v["urgent_90d"] = escalated[2], urgent[2]
    v["csat_avg_90d"] = _ratio(csat_sum, csat_count)
    v["csat_known"] = 1.0 if csat_count else 0.0
