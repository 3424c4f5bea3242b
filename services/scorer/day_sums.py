"""Rolling per-day sums for an account's day closes: a close reads its windows in O(1) instead of re-adding them. Pure.

A day close reads sums over windows that end on the closed day: the current 7 days and the 28 before them (usage,
tickets), 35 days of support, and 7, 28 and 90 days and weekly buckets for the churn-risk features. ``DaySums`` holds
prefix sums of the dense daily figures (activity, logins, feature uses, key-feature uses) of the days up to its
``anchor`` (the latest day closed) and the ordinals of the days with support data (tickets, resolutions, CSAT), so
a window's sum is one subtraction, and the next day's close appends one day.

The results are identical, to the bit. A float sum depends on the order it is added in, and the scorer's own sums
(``metrics.window_metrics``, ``risk_features.risk_inputs``) add day by day in their order; a prefix difference equals
such a sum exactly when every value is a whole number (integer sums below 2**53 are exact in any order), as logins,
feature counts and ticket counts are. A day with a fractional figure (API calls count in hundredths, quantities may
be fractional) turns the sums off until it is out of every window's reach: those closes are computed as before.
Support sums (tickets, resolve hours, CSAT) are added day by day over the few days that have any, in the same order.

The sums are a cache on ``AccountState.sums``, never stored: windows.py drops them when a day they already hold changes
(a late event), and forgets the first day or NPS totals when it prunes a day; they are built again when next read.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.scorer.windows import AccountState, WindowRules

REACH = 90  # a close reads days up to REACH - 1 days before it (the 90-day risk window), never further back
_WHOLE_BELOW = float(2**40)  # a day's figure above this could make a 90-day sum inexact: treated as fractional
_SLACK = 30  # days held beyond the reach before the oldest are dropped (4 arrays of 8 bytes a day)


class _Day(Protocol):
    """What the sums read of a ``windows.DayBucket``."""

    logins: int
    feature_uses: float
    key_feature_uses: float
    api_calls: float
    tickets_opened: int
    tickets_escalated: int
    tickets_urgent: int
    resolutions_timed: int
    resolve_hours: float
    csat_count: int
    nps_sum: int
    nps_count: int
    users: int
    features: int


def has_support(b: _Day) -> bool:
    """Whether a day has anything the support sums read (tickets, escalations, timed resolutions, CSAT)."""
    return bool(b.tickets_opened or b.tickets_escalated or b.resolutions_timed or b.csat_count or b.resolve_hours)


@dataclass(slots=True, eq=False)
class DaySums:
    anchor: int  # ordinal of the latest day held
    origin: int  # ordinal of the day after the one prefix index 0 sums up to
    activity: array[float]  # prefix sums: [i] - [j] = the days origin + j .. origin + i - 1
    logins: array[float]
    uses: array[float]
    key_uses: array[float]
    support: list[int]  # ordinals of the held days with support data, ascending
    exact_from: int  # closes before this ordinal do not use the sums (a fractional day is within their reach)
    first: int | None  # ordinal of the account's first day with data; None: look again (a day was pruned)
    nps: tuple[int, int] | None  # (sum, count) of NPS answers over the days held and before; None: look again
    bitmaps_of: int = -1  # the anchor and window length ``bitmaps`` holds the bitmaps of (-1: none)
    bitmaps_held: tuple[int, int] = (0, 0)

    def total(self, prefix: array[float], lo: int, hi: int) -> float:
        """The sum of the days ``lo`` .. ``hi`` (ordinals, both included, within the reach of the anchor)."""
        return prefix[hi - self.origin + 1] - prefix[lo - self.origin]

    def support_days(self, lo: int) -> list[int]:
        """The support days from ordinal ``lo`` to the anchor, newest first."""
        return self.support[bisect_left(self.support, lo) :][::-1]

    def bitmaps(self, state: AccountState, days: int) -> tuple[int, int]:
        """``recent_bitmaps`` of the ``days`` ending on the anchor, read once per close (metrics and risk share it)."""
        key = self.anchor * 1024 + days
        if self.bitmaps_of != key:
            self.bitmaps_of, self.bitmaps_held = key, recent_bitmaps(state, self.anchor, days)
        return self.bitmaps_held

    def first_day(self, state: AccountState) -> int:
        if self.first is None:
            self.first = min(state.days).toordinal()
        return self.first

    def nps_totals(self, state: AccountState) -> tuple[int, int]:
        if self.nps is None:
            held = [b for d, b in state.days.items() if d.toordinal() <= self.anchor]
            self.nps = (sum(b.nps_sum for b in held), sum(b.nps_count for b in held))
        return self.nps


def sums_through(
    state: AccountState, day: date, rules: WindowRules, *, ahead: int = 0, build: bool = True
) -> DaySums | None:
    """The sums of ``state`` through ``day``, rolled on from the last close's or built; None where they do not
    hold: a fractional day within reach, windows beyond the reach, or days more than ``ahead`` days after ``day``
    in the state (pruning moves with the latest day: it must not touch what the windows of ``day`` read).
    ``build=False``: only sums already held are rolled on (a tip alone does not make an account carry them)."""
    wm = state.watermark
    o = day.toordinal()
    if wm is None or not state.days or wm.toordinal() - o > ahead or not _within_reach(rules):
        return None
    s = state.sums
    if s is not None and s.anchor == o:  # read again at the same close (its metrics, then its risk)
        return s if s.exact_from <= o else None
    if s is None and not build:
        return None
    if s is None or s.anchor > o or o - s.anchor > REACH or (s.exact_from <= o and s.exact_from > s.anchor):
        s = state.sums = _build(state, o)
    elif s.exact_from <= o:
        days = state.days
        while s.anchor < o:
            _append(s, days.get(date.fromordinal(s.anchor + 1)))
    if o < s.exact_from:
        return None
    return s


def _within_reach(rules: WindowRules) -> bool:
    """The sums hold only what the reach holds, and only while pruning never drops a day within it."""
    return rules.horizon_days >= REACH and rules.current_days + rules.baseline_days <= REACH


def fractional(a: float, u: float, k: float) -> bool:
    """Whether any of a day's activity, feature uses and key-feature uses is not a whole number."""
    return bool(a % 1 or u % 1 or k % 1 or a > _WHOLE_BELOW)


def _build(state: AccountState, o: int) -> DaySums:
    origin = o - REACH + 1
    n = REACH
    values = [[0.0] * n for _ in range(4)]
    support: list[int] = []
    exact_from = 0
    nps_sum = nps_count = 0
    for d, b in state.days.items():
        q = d.toordinal()
        if q > o:
            continue
        nps_sum += b.nps_sum
        nps_count += b.nps_count
        if q < origin:
            continue
        a, u, k = b.logins + b.feature_uses + b.api_calls / 100.0, b.feature_uses, b.key_feature_uses
        if fractional(a, u, k):
            exact_from = max(exact_from, q + REACH)
        i = q - origin
        values[0][i], values[1][i], values[2][i], values[3][i] = a, b.logins, u, k
        if has_support(b):
            support.append(q)
    support.sort()
    prefixes = []
    for column in values:
        prefix, running = array("d", [0.0]), 0.0
        for v in column:
            running += v
            prefix.append(running)
        prefixes.append(prefix)
    first = min(state.days).toordinal()
    activity, logins, uses, key_uses = prefixes
    return DaySums(o, origin, activity, logins, uses, key_uses, support, exact_from, first, (nps_sum, nps_count))


def _append(s: DaySums, b: _Day | None) -> None:
    """Move the anchor on by one day, holding ``b`` (None: a day without data)."""
    s.anchor += 1
    if b is None:
        for prefix in (s.activity, s.logins, s.uses, s.key_uses):
            prefix.append(prefix[-1])
    else:
        a, u, k = b.logins + b.feature_uses + b.api_calls / 100.0, b.feature_uses, b.key_feature_uses
        if fractional(a, u, k):
            s.exact_from = s.anchor + REACH
        s.activity.append(s.activity[-1] + a)
        s.logins.append(s.logins[-1] + b.logins)
        s.uses.append(s.uses[-1] + u)
        s.key_uses.append(s.key_uses[-1] + k)
        if has_support(b):
            s.support.append(s.anchor)
        if s.nps is not None and b.nps_count:
            s.nps = (s.nps[0] + b.nps_sum, s.nps[1] + b.nps_count)
    if len(s.activity) > REACH + _SLACK:
        _compact(s)


def _compact(s: DaySums) -> None:
    """Drop the days beyond the reach, and rebase the prefix sums on zero (they stay small, so exact)."""
    drop = len(s.activity) - REACH - 1
    for prefix in (s.activity, s.logins, s.uses, s.key_uses):
        base = prefix[drop]
        del prefix[:drop]
        for i in range(len(prefix)):
            prefix[i] -= base
    s.origin += drop
    oldest = s.anchor - REACH
    s.support = [q for q in s.support if q > oldest]


def recent_bitmaps(state: AccountState, o: int, days: int) -> tuple[int, int]:
    """Distinct users' and features' bitmaps over the ``days`` ending on ordinal ``o`` (or-ed, so not summed)."""
    held, day_of = state.days, date.fromordinal
    users = features = 0
    for q in range(o - days + 1, o + 1):
        b = held.get(day_of(q))
        if b is not None:
            users |= b.users
            features |= b.features
    return users, features


def forget_day(state: AccountState, bucket: _Day, day: int = -1) -> None:
    """windows.py pruned the day of ordinal ``day`` (-1: not said): the first day may have moved on (looked up
    again where the next few days do not hold it), and the NPS totals lost its answers."""
    s = state.sums
    if s is not None:
        if s.first is not None and day > s.first:
            pass  # the first day is still held
        elif s.first is not None and day == s.first:
            s.first = _next_held(state, day)
        else:
            s.first = None
        if bucket.nps_count:
            s.nps = None


def _next_held(state: AccountState, after: int, look: int = 8) -> int | None:
    """The first held day in the ``look`` days after ordinal ``after`` (the first day, just pruned); None: none."""
    held, day_of = state.days, date.fromordinal
    for q in range(after + 1, after + 1 + look):
        if day_of(q) in held:
            return q
    return None


def first_held(state: AccountState) -> date:
    """``min(state.days)`` (the state holds a day), from the sums where they know it."""
    s = state.sums
    return min(state.days) if s is None or s.first is None else date.fromordinal(s.first)


def touch_day(state: AccountState, on: date) -> None:
    """windows.py is about to change the day ``on``: sums that already hold it are dropped."""
    s = state.sums
    if s is not None and on.toordinal() <= s.anchor:
        state.sums = None
