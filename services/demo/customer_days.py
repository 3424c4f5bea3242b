"""One day of a planned customer base (services/demo/customer_base.py) as events. Pure and seeded, no I/O.

Behaviour follows the account's weekly value: the share of seats active, feature breadth, usage per active user,
the ticket rate and priority, NPS and CSAT. Usage is aggregated per user-day (one ``login``, one or two
``feature_used`` with a quantity) to keep the volume near a dozen events per account-day. Events of a ticket that
fall on a later day (escalation, resolution) wait in a queue keyed by day, so only a day's events are in memory.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from services.demo.customer_base import (
    PLANS,
    CustomerBase,
    PlannedAccount,
    renewal_days,
)

DAY_SECONDS = 86_400
Event = dict[str, Any]

# Which integration sends what: the product's web app and, for every fourth account's odd-numbered users, its mobile
# app (so one source going silent quiets part of some accounts and all of none); billing, the help desk, surveys.
WEB_APP, MOBILE_APP, BILLING, HELP_DESK, SURVEYS = "web-app", "mobile-app", "billing", "help-desk", "surveys"
SOURCES = (WEB_APP, MOBILE_APP, BILLING, HELP_DESK, SURVEYS)


class _DayWriter:
    """Collects one account's events of one day; an event past midnight waits for its day (unless the account has
    churned by then or the period is over)."""

    __slots__ = ("account_id", "day", "events", "id_prefix", "limit", "n", "pending", "prefixes", "weekday")

    def __init__(
        self,
        base: CustomerBase,
        account: PlannedAccount,
        day: int,
        prefixes: list[str],
        pending: dict[int, list[Event]],
    ) -> None:
        self.account_id = account.profile.account_id
        self.day = day
        self.id_prefix = f"h{base.seed}-{account.index}-{day}-"
        self.n = 0
        self.events: list[Event] = []
        self.pending = pending
        self.prefixes = prefixes
        self.weekday = (base.start + timedelta(days=day)).weekday() < 5
        self.limit = base.days if account.churn_day is None else min(base.days, account.churn_day)

    def add(self, seconds: int, kind: str, fields: dict[str, Any]) -> None:
        day = self.day + seconds // DAY_SECONDS
        if day >= self.limit and not (kind == "lifecycle" and fields.get("action") == "churned"):
            return
        s = seconds % DAY_SECONDS
        self.n += 1
        event = {
            "kind": kind,
            "event_id": f"{self.id_prefix}{self.n}",
            "account_id": self.account_id,
            "occurred_at": f"{self.prefixes[day]}{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z",
            **fields,
        }
        (self.events if day == self.day else self.pending.setdefault(day, [])).append(event)


def iter_base_days(base: CustomerBase) -> Iterator[tuple[date, list[Event]]]:
    prefixes = [f"{(base.start + timedelta(days=d)).isoformat()}T" for d in range(base.days)]
    renewals = {a.index: frozenset(renewal_days(base.start, a.created_day, base.days)) for a in base.accounts}
    pending: dict[int, list[Event]] = {}
    for d in range(base.days):
        events = pending.pop(d, [])
        for account in base.accounts:
            events.extend(account_day(base, account, d, prefixes, pending, renewals[account.index]))
        events.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
        yield base.start + timedelta(days=d), events


def account_day(
    base: CustomerBase,
    a: PlannedAccount,
    d: int,
    prefixes: list[str],
    pending: dict[int, list[Event]],
    renewals: frozenset[int],
) -> list[Event]:
    """One account's events of day ``d`` (later events of its tickets go to ``pending``)."""
    if d < a.created_day or (a.churn_day is not None and d > a.churn_day):
        return []
    rng = random.Random(base.seed * 10**12 + a.index * 10**5 + d)
    out = _DayWriter(base, a, d, prefixes, pending)
    start_s = a.work_hour * 3600
    if d == a.churn_day:
        out.add(
            start_s + rng.randrange(36_000),
            "lifecycle",
            {"action": "churned", "plan": a.profile.plan, "source": BILLING},
        )
        return out.events
    _lifecycle(out, a, d, renewals, start_s - 60)  # before the day's usage: signed_up opens an account's history
    value = a.weekly_value[d // 7]
    seats = _seats_on(a, d, out, start_s)
    factor = usage_factor(base, a, d)
    _usage(out, rng, a, d, value, factor, seats)
    _tickets(out, rng, a, d, value, factor, seats)
    _feedback(out, rng, a, d, value, seats)
    return out.events


def usage_factor(base: CustomerBase, a: PlannedAccount, d: int) -> float:
    """How much of its normal usage the account shows on day ``d``: season, weekly wobble, onboarding, dips."""
    day = base.start + timedelta(days=d)
    factor = a.weekly_usage[d // 7]
    if day.weekday() >= 5:
        factor *= a.weekend_factor
    if (day.month == 12 and day.day >= 22) or (day.month == 1 and day.day <= 1):
        factor *= 0.15 if day.day in (24, 25, 26, 31, 1) else 0.4
    if a.summer_dip and 0 <= d - a.summer_dip[0] < a.summer_dip[1]:
        factor *= 0.55
    if a.dip and 0 <= d - a.dip[0] < a.dip[1]:
        factor *= a.dip[2]
    if a.incident_week == d // 7:
        factor *= 0.85
    if a.power_user_left_day is not None and d >= a.power_user_left_day:
        factor *= 0.85
    if a.created_day >= 0:
        factor *= min(a.stall_level, 0.12 + 0.88 * (d - a.created_day) / a.ramp_days, 1.0)
    return factor


def usage_source(a: PlannedAccount, user: int) -> str:
    return MOBILE_APP if a.index % 4 == 0 and user % 2 == 1 else WEB_APP


def _lifecycle(out: _DayWriter, a: PlannedAccount, d: int, renewals: frozenset[int], at: int) -> None:
    if d == a.created_day:
        signed_up = {"action": "signed_up", "plan": a.profile.plan, "user_id": _user(a, 0), "source": BILLING}
        out.add(at, "lifecycle", signed_up)
    for day, milestone in a.milestones:
        if day == d:
            reached = {"action": "onboarding_milestone", "milestone": milestone, "source": WEB_APP}
            out.add(at + 3600 * 6, "lifecycle", reached)
    if d in renewals:
        out.add(at, "lifecycle", {"action": "renewed", "plan": a.profile.plan, "source": BILLING})


def _seats_on(a: PlannedAccount, d: int, out: _DayWriter, at: int) -> int:
    seats = a.profile.seats_purchased or 1
    for day, changed in a.seat_changes:
        if day > d:
            break
        seats = changed
        if day == d:
            out.add(at, "usage", {"action": "seats_changed", "seats": changed, "source": BILLING})
    return seats


def _usage(out: _DayWriter, rng: random.Random, a: PlannedAccount, d: int, v: float, f: float, seats: int) -> None:
    in_use = (0.15 + 0.85 * v) * PLANS[a.profile.plan or "starter"].engagement  # share of seats in use
    chance = (0.6 + 0.6 * v) * f
    adopted = a.feature_order[: 2 + round(v * (len(a.feature_order) - 2))]
    gone = a.power_user_left_day is not None and d >= a.power_user_left_day
    second, third, fourth = 0.5 + 0.4 * v, 0.25 + 0.4 * v, 0.1 + 0.3 * v
    for u in range(1 if gone else 0, seats):
        if a.seat_rank[u] >= in_use or rng.random() >= a.propensity[u] * chance:
            continue
        at = a.work_hour * 3600 + rng.randrange(36_000)
        user, source = _user(a, u), usage_source(a, u)
        out.add(at, "usage", {"action": "login", "user_id": user, "source": source})
        for _ in range(1 + (rng.random() < second) + (rng.random() < third) + (rng.random() < fourth)):
            quantity = max(1, round(a.intensity[u] * (0.5 + v) * 4 * rng.lognormvariate(0, 0.4)))
            feature = rng.choice(adopted)
            fields = {"action": "feature_used", "user_id": user, "feature": feature, "quantity": quantity}
            out.add(at + 60 + rng.randrange(3600), "usage", fields | {"source": source})


def _tickets(out: _DayWriter, rng: random.Random, a: PlannedAccount, d: int, v: float, f: float, seats: int) -> None:
    incident = a.incident_week == d // 7
    weekday = out.weekday
    rate = 0.014 * seats**0.6 * (0.4 + 3.5 * (1 - v) ** 2) * (0.6 + 0.4 * min(1.0, f)) * (1.0 if weekday else 0.3)
    if incident and weekday:
        rate += 0.5 + 0.02 * seats
    for k in range(_poisson(rng, rate)):
        bad = (1 - v) + (0.6 if incident else 0.0)
        priority = rng.choices(("low", "normal", "high", "urgent"), (0.25, 0.55, 0.12 + 0.2 * bad, 0.03 + 0.12 * bad))[
            0
        ]
        ticket = f"{out.account_id}-T{d}-{k}"
        opened = a.work_hour * 3600 + rng.randrange(36_000)
        out.add(opened, "ticket", {"action": "opened", "ticket_id": ticket, "priority": priority, "source": HELP_DESK})
        if rng.random() < 0.04 + 0.2 * bad + (0.35 if priority == "urgent" else 0.0):
            escalated = {"action": "escalated", "ticket_id": ticket, "priority": priority, "source": HELP_DESK}
            out.add(opened + rng.randrange(1800, 30 * 3600), "ticket", escalated)
        median_hours = {"urgent": 5.0, "high": 12.0, "normal": 26.0, "low": 48.0}[priority] * (1 + bad)
        resolved = opened + int(3600 * median_hours * rng.lognormvariate(0, 0.7))
        fields: dict[str, Any] = {"action": "resolved", "ticket_id": ticket, "priority": priority, "source": HELP_DESK}
        if rng.random() < 0.55:
            fields["csat"] = _clamp(round(rng.gauss(2.3 + 2.8 * v - (1.2 if incident else 0.0), 0.8)), 1, 5)
        out.add(resolved, "ticket", fields)


def _feedback(out: _DayWriter, rng: random.Random, a: PlannedAccount, d: int, v: float, seats: int) -> None:
    at = a.work_hour * 3600 + rng.randrange(36_000)
    if d >= a.survey_offset and (d - a.survey_offset) % 91 == 0 and rng.random() < 0.6:
        for u in rng.sample(range(seats), min(seats, 1 + rng.randrange(3))):
            nps = _clamp(round(rng.gauss(0.8 + 9.5 * v, 1.6)), 0, 10)
            out.add(at + 600 * u, "feedback", {"user_id": _user(a, u), "nps": nps, "source": SURVEYS})
    if rng.random() < 0.012:
        user = _user(a, rng.randrange(seats))
        csat = _clamp(round(rng.gauss(1.8 + 3.2 * v, 0.9)), 1, 5)
        out.add(at, "feedback", {"user_id": user, "csat": csat, "source": SURVEYS})


def _user(a: PlannedAccount, u: int) -> str:
    return f"{a.profile.account_id}-u{u}"


def _clamp(x: int, low: int, high: int) -> int:
    return max(low, min(high, x))


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, threshold = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p < threshold:
            return n
        n += 1
