"""A customer base with months of history and known outcomes, to backtest warnings on. Pure and seeded, no I/O.

The generative model (plausible B2B SaaS; every figure below is a default in ``BaseParams``):

- Accounts: plans starter / growth / enterprise (58 / 31 / 11 %) with log-uniform seats (2-12, 8-45, 30-160)
  and ARR per seat by plan; touch tier from ARR (high >= 80k, low >= 10k, else tech); eight CSMs; renewal on
  the anniversary of ``created_date``. Most accounts exist at the start (2 months to 4 years old); a share
  signs up during the period (``lifecycle signed_up``, usage ramping up over 4-8 weeks; 30 % of them stall at
  a low level). Only ``milestone_fraction`` (40 %) of accounts report ``onboarding_milestone`` events at all.
- Value: a latent weekly value in (0, 1) per account (how much it gets from the product): the logistic of an
  AR(1) around an account-specific level. Value shows in behaviour: the share of seats active each day, feature
  breadth, usage per active user, the ticket rate and priority, NPS and CSAT answers. Enterprise accounts use a
  smaller share of their seats at the same value, so a level is only comparable among peers of one plan.
- Churn: each week an account churns with probability logistic(base + plan offset + slope * (pivot - mean value
  of the last 6 weeks)), times ``renewal_multiplier`` in the weeks before its renewal date. So a level that stays
  low for weeks predicts churn; a decline is visible only when the value fell first. Besides, every account
  has a small constant weekly hazard of churning with no behavioural warning (budget cut, acquisition).
- Archetypes: steady; value shock (champion leaves, competitor: the level drops and value slides over weeks,
  usually to churn); holiday dip (1-3 weeks at 20-40 % usage, no value change); power-user loss (the heaviest
  user leaves, usage lower for good, value unchanged); incident (a week with a ticket burst, escalations, bad
  CSAT); onboarding and stalled onboarding (sign-ups). Seasonality: weekends much lower, a late-December dip for
  everyone, a 2-3 week summer dip for a subset; weekly usage wobbles for all, so 7-vs-28-day trend rules fire on
  healthy accounts too.
- A churned account sends ``lifecycle churned`` on its churn day and nothing after it.

``plan_base`` draws everything that spans days (profiles, weekly values, churn days, seat changes) in a first
pass; ``iter_days`` then generates events one day at a time (services/demo/customer_days.py), so memory is
bounded by one day of events.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from shared.accounts import AccountProfile, Contact, LifecycleStage, TouchTier

GENERATOR_VERSION = "customer-base/1"
FEATURES = ("dashboards", "reports", "alerts", "exports", "integrations", "api", "automation", "sharing", "sso")
CSMS = (
    "Ana Lima", "Ben Okafor", "Chloe Martin", "Dev Patel", "Elif Kaya", "Femi Adeyemi", "Greta Holm", "Hiro Sato",
)  # fmt: skip
NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Cyberdyne")


class Archetype(StrEnum):
    STEADY = "steady"
    VALUE_SHOCK = "value_shock"
    HOLIDAY_DIP = "holiday_dip"
    POWER_USER_LOSS = "power_user_loss"
    INCIDENT = "incident"
    ONBOARDING = "onboarding"
    ONBOARDING_STALL = "onboarding_stall"


class ChurnCause(StrEnum):
    LOW_VALUE = "low_value"  # the value stayed low for weeks (visible in behaviour)
    NO_WARNING = "no_warning"  # budget cut, acquisition: behaviour gave no sign


@dataclass(frozen=True)
class PlanShape:
    share: float
    seats: tuple[int, int]
    arr_per_seat: tuple[float, float]
    engagement: float  # share of seats active at a given value, relative to starter
    churn_logit: float  # plan offset of the weekly churn hazard (small customers churn more)


PLANS = {
    "starter": PlanShape(0.58, (2, 12), (350.0, 650.0), 1.0, 0.4),
    "growth": PlanShape(0.31, (8, 45), (550.0, 900.0), 0.88, 0.0),
    "enterprise": PlanShape(0.11, (30, 160), (800.0, 1400.0), 0.7, -0.5),
}


@dataclass(frozen=True)
class BaseParams:
    signup_fraction: float = 0.12  # accounts that sign up during the period
    stall_fraction: float = 0.3  # of sign-ups, those whose onboarding stalls
    milestone_fraction: float = 0.4  # accounts whose product reports onboarding milestones
    summer_dip_fraction: float = 0.35
    archetype_weights: tuple[tuple[str, float], ...] = (
        ("steady", 0.62), ("value_shock", 0.08), ("holiday_dip", 0.12), ("power_user_loss", 0.09), ("incident", 0.09),
    )  # fmt: skip
    value_level: tuple[float, float] = (1.1, 0.75)  # mean, sd of the account's level (logit scale)
    value_phi: float = 0.8  # weekly AR(1) persistence
    value_sigma: float = 0.3
    shock_drop: tuple[float, float] = (1.6, 3.2)  # logit-scale drop of the level at a value shock
    hazard_base: float = -6.4  # weekly churn logit at the pivot value
    hazard_slope: float = 11.0
    hazard_pivot: float = 0.5
    renewal_multiplier: float = 2.5
    renewal_window_days: int = 45
    no_warning_weekly: float = 0.00035
    weekly_wobble: float = 0.1  # sd of the weekly log usage factor
    quiet_week_chance: float = 0.04  # a week at 55-80 % usage (offsites, crunch), for any account


@dataclass(frozen=True)
class PlannedAccount:
    """One account's profile (as of the start) and everything about it that spans days. Day numbers count from
    the base's start (negative: before it)."""

    index: int
    profile: AccountProfile
    archetype: Archetype
    created_day: int
    churn_day: int | None
    churn_cause: ChurnCause | None
    weekly_value: tuple[float, ...]  # per week of the period (week w = days 7w..7w+6); 0 before creation
    weekly_usage: tuple[float, ...]  # multiplicative usage wobble per week
    propensity: tuple[float, ...]  # per user: chance to be active on a normal day at full value
    seat_rank: tuple[float, ...]  # per user: in use while the share of seats in use (by value) exceeds it
    intensity: tuple[float, ...]  # per user: how much an active user does
    seat_changes: tuple[tuple[int, int], ...]  # (day, seats from that day)
    feature_order: tuple[str, ...]
    work_hour: int  # start of the working day in UTC (region)
    weekend_factor: float
    ramp_days: int  # sign-ups: days to full usage
    stall_level: float  # sign-ups: usage ceiling (1.0 unless stalled)
    milestones: tuple[tuple[int, str], ...]
    dip: tuple[int, int, float] | None  # (first day, days, usage factor)
    summer_dip: tuple[int, int] | None  # (first day, days)
    power_user_left_day: int | None
    incident_week: int | None
    survey_offset: int  # NPS surveys every 91 days from this day


@dataclass(frozen=True)
class CustomerBase:
    seed: int
    start: date
    days: int
    params: BaseParams
    accounts: tuple[PlannedAccount, ...] = field(repr=False)

    @property
    def weeks(self) -> int:
        return -(-self.days // 7)

    def churned_on(self, account: PlannedAccount) -> date | None:
        return None if account.churn_day is None else self.start + timedelta(days=account.churn_day)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def plan_base(accounts: int, *, start: date, days: int, seed: int, params: BaseParams | None = None) -> CustomerBase:
    """The customer base: profiles, archetypes, weekly values and churn days. Account i depends only on
    (seed, i, start, days, params), not on how many accounts there are."""
    p = params or BaseParams()
    planned = tuple(_plan_account(i, random.Random(f"cb:{seed}:{i}"), start, days, p) for i in range(accounts))
    return CustomerBase(seed=seed, start=start, days=days, params=p, accounts=planned)


def iter_days(base: CustomerBase) -> Iterator[tuple[date, list[dict[str, Any]]]]:
    """Each day of the period with its events (JSON-ready dicts for the event schema), sorted by occurred_at."""
    from services.demo.customer_days import iter_base_days  # the day generator needs this module's types

    return iter_base_days(base)


@dataclass(frozen=True)
class BaseRate:
    weeks: int
    positives: int

    @property
    def rate(self) -> float:
        return self.positives / self.weeks if self.weeks else 0.0


def base_rate(base: CustomerBase, *, horizon_days: int = 60, min_age_days: int = 28) -> BaseRate:
    """Share of account-weeks followed by churn within ``horizon_days``. A week counts at its last day if the
    account is alive then, at least ``min_age_days`` old, and the horizon ends inside the period."""
    weeks = positives = 0
    for a in base.accounts:
        for w in range(base.weeks):
            at = 7 * w + 6
            if at + horizon_days >= base.days or at - a.created_day < min_age_days:
                continue
            if a.churn_day is not None and a.churn_day <= at:
                break
            weeks += 1
            positives += a.churn_day is not None and a.churn_day <= at + horizon_days
    return BaseRate(weeks, positives)


def _plan_account(i: int, rng: random.Random, start: date, days: int, p: BaseParams) -> PlannedAccount:
    plan = rng.choices(list(PLANS), [s.share for s in PLANS.values()])[0]
    shape = PLANS[plan]
    seats = round(math.exp(rng.uniform(math.log(shape.seats[0]), math.log(shape.seats[1] + 0.99)) - 0.49))
    signup = rng.random() < p.signup_fraction
    created = rng.randrange(0, max(1, days - 21)) if signup else -rng.randrange(61, 4 * 365)
    stalled = signup and rng.random() < p.stall_fraction
    if signup:
        archetype = Archetype.ONBOARDING_STALL if stalled else Archetype.ONBOARDING
    else:
        names, weights = zip(*p.archetype_weights, strict=True)
        archetype = Archetype(rng.choices(names, weights)[0])
    weeks = -(-days // 7)
    profile = _profile(i, rng, plan, seats, shape, start, created)
    renewals = renewal_days(start, created, days + p.renewal_window_days)
    path = _simulate_value(rng, p, archetype, plan, (created, seats, days), renewals)
    ramp_days = rng.randrange(28, 57)
    stall_level = rng.uniform(0.25, 0.5) if stalled else 1.0
    work_hour = rng.choices((13, 7, 1), (0.5, 0.35, 0.15))[0]
    return PlannedAccount(
        index=i,
        profile=profile,
        archetype=archetype,
        created_day=created,
        churn_day=path.churn_day,
        churn_cause=path.churn_cause,
        weekly_value=tuple(path.values),
        weekly_usage=tuple(_wobble(rng, p) for _ in range(weeks)),
        propensity=tuple(_propensity(rng, u) for u in range(path.max_seats)),
        seat_rank=tuple(0.0 if u == 0 else rng.random() for u in range(path.max_seats)),
        intensity=tuple((3.0 if u == 0 else 1.0) * rng.lognormvariate(0, 0.45) for u in range(path.max_seats)),
        seat_changes=tuple(path.seat_changes),
        feature_order=tuple(rng.sample(FEATURES, len(FEATURES))),
        work_hour=work_hour,
        weekend_factor=rng.uniform(0.08, 0.35),
        ramp_days=ramp_days,
        stall_level=stall_level,
        milestones=_milestones(rng, p, created, ramp_days, stalled) if signup else (),
        dip=_dip(rng, days) if archetype is Archetype.HOLIDAY_DIP else None,
        summer_dip=_summer_dip(rng, start, p),
        power_user_left_day=_power_user_left(rng, archetype, path.shock_week, days),
        incident_week=rng.randrange(weeks) if archetype is Archetype.INCIDENT else None,
        survey_offset=rng.randrange(91),
    )


def _profile(
    i: int, rng: random.Random, plan: str, seats: int, shape: PlanShape, start: date, created: int
) -> AccountProfile:
    arr = round(seats * rng.uniform(*shape.arr_per_seat), -2)
    tier = TouchTier.HIGH if arr >= 80_000 else TouchTier.LOW if arr >= 10_000 else TouchTier.TECH
    csm = CSMS[rng.randrange(len(CSMS))]
    handle = csm.split()[0].lower()
    created_date = start + timedelta(days=created)
    return AccountProfile(
        account_id=f"acct-{i:05d}",
        name=f"{rng.choice(NAMES)} {i:05d}",
        plan=plan,
        arr=arr,
        mrr=round(arr / 12, 2),
        seats_purchased=seats,
        csm=Contact(name=csm, email=f"{handle}@csm.example.com", slack=f"@{handle}"),
        support_route=Contact(name="Support", email="support@example.com", slack="#support"),
        touch_tier=tier,
        lifecycle_stage=LifecycleStage.ONBOARDING if created >= -60 else LifecycleStage.ADOPTION,
        renewal_date=_next_anniversary(created_date, max(start, created_date + timedelta(days=1))),
        created_date=created_date,
    )


def _next_anniversary(created: date, on_or_after: date) -> date:
    year = on_or_after.year
    while True:
        day = date(year, created.month, min(created.day, 28))
        if day >= on_or_after:
            return day
        year += 1


@dataclass
class _ValuePath:
    values: list[float]
    churn_day: int | None = None
    churn_cause: ChurnCause | None = None
    seat_changes: list[tuple[int, int]] = field(default_factory=list)
    max_seats: int = 0
    shock_week: int | None = None


def _simulate_value(
    rng: random.Random, p: BaseParams, archetype: Archetype, plan: str, span: tuple[int, int, int], renewal: list[int]
) -> _ValuePath:
    """Weekly value, seat changes and the churn day, in one pass over the weeks of the period."""
    created, seats, days = span
    weeks = -(-days // 7)
    level = rng.gauss(*p.value_level)
    if archetype is Archetype.ONBOARDING_STALL:
        level = rng.gauss(-1.0, 0.5)
    shock_week = rng.randrange(-4, max(1, weeks - 6)) if archetype is Archetype.VALUE_SHOCK else None
    drop = rng.uniform(*p.shock_drop)
    first_week = max(0, created // 7)
    warmup = 8 if created < 0 else 0
    z = rng.gauss(level, p.value_sigma / math.sqrt(1 - p.value_phi**2)) if created < 0 else level
    recent: list[float] = []
    path = _ValuePath(values=[0.0] * weeks, max_seats=seats, shock_week=shock_week)
    for w in range(first_week - warmup, weeks):
        mean = level - (drop if shock_week is not None and w >= shock_week else 0.0)
        z = mean + p.value_phi * (z - mean) + rng.gauss(0, p.value_sigma)
        value = sigmoid(z)
        recent = [*recent[-5:], value]
        if w < first_week:
            continue
        path.values[w] = value
        seats = _seat_change(rng, path, seats, value, w, created)
        if path.churn_day is None and w * 7 >= created + 14:
            _draw_churn(rng, p, path, plan, recent, w, renewal, days)
        if path.churn_day is not None:
            break
    return path


def _draw_churn(
    rng: random.Random, p: BaseParams, path: _ValuePath, plan: str, recent: list[float], w: int,
    renewal: list[int], days: int,
) -> None:  # fmt: skip
    hazard = sigmoid(
        p.hazard_base + PLANS[plan].churn_logit + p.hazard_slope * (p.hazard_pivot - sum(recent) / len(recent))
    )
    if any(0 <= r - 7 * w <= p.renewal_window_days for r in renewal):
        hazard = min(1.0, hazard * p.renewal_multiplier)
    cause = ChurnCause.LOW_VALUE if rng.random() < hazard else None
    if rng.random() < p.no_warning_weekly:
        cause = ChurnCause.NO_WARNING
    day = 7 * w + rng.randrange(7)
    if cause is not None and day < days:
        path.churn_day, path.churn_cause = day, cause


def renewal_days(start: date, created: int, days: int) -> list[int]:
    """The days (from ``start``) of the renewals, anniversaries of ``created``, in the first ``days`` days."""
    created_date = start + timedelta(days=created)
    out: list[int] = []
    year = max(start.year, created_date.year + 1) - 1
    while True:
        year += 1
        at = (date(year, created_date.month, min(created_date.day, 28)) - start).days
        if at >= days:
            return out
        if at > max(0, created):
            out.append(at)


def _seat_change(rng: random.Random, path: _ValuePath, seats: int, value: float, w: int, created: int) -> int:
    """Rare seat changes: expansion when the account gets a lot out of the product, contraction when not."""
    if 7 * w < created + 42:
        return seats
    if value > 0.8 and rng.random() < 0.012:
        seats += max(1, round(seats * rng.uniform(0.1, 0.3)))
    elif value < 0.35 and rng.random() < 0.025 and seats > 2:
        seats -= max(1, round(seats * rng.uniform(0.1, 0.3)))
    else:
        return seats
    path.seat_changes.append((7 * w + rng.randrange(7), seats))
    path.max_seats = max(path.max_seats, seats)
    return seats


def _wobble(rng: random.Random, p: BaseParams) -> float:
    quiet = rng.uniform(0.55, 0.8) if rng.random() < p.quiet_week_chance else 1.0
    return quiet * rng.lognormvariate(0, p.weekly_wobble)


def _propensity(rng: random.Random, user: int) -> float:
    """Users differ: a power user (user 0) is in nearly every day, some seats are barely used."""
    if user == 0:
        return 0.97
    return min(0.97, rng.betavariate(1.3, 1.0))


def _milestones(
    rng: random.Random, p: BaseParams, created: int, ramp_days: int, stalled: bool
) -> tuple[tuple[int, str], ...]:
    if rng.random() >= p.milestone_fraction:
        return ()
    steps = (("workspace_created", 0.0), ("first_integration", 0.2), ("team_invited", 0.45), ("activated", 0.8))
    reached = steps[: rng.randrange(1, 3)] if stalled else steps
    return tuple((created + round(at * ramp_days) + rng.randrange(3), name) for name, at in reached)


def _dip(rng: random.Random, days: int) -> tuple[int, int, float]:
    length = 7 * rng.randrange(1, 4) + rng.randrange(-2, 3)
    return rng.randrange(max(1, days - length)), max(5, length), rng.uniform(0.2, 0.4)


def _summer_dip(rng: random.Random, start: date, p: BaseParams) -> tuple[int, int] | None:
    if rng.random() >= p.summer_dip_fraction:
        return None
    year = start.year if start <= date(start.year, 8, 10) else start.year + 1
    first = date(year, 7, 10) + timedelta(days=rng.randrange(30))
    return (first - start).days, rng.randrange(14, 22)


def _power_user_left(rng: random.Random, archetype: Archetype, shock_week: int | None, days: int) -> int | None:
    if archetype is Archetype.POWER_USER_LOSS:
        return rng.randrange(days)
    if shock_week is not None and rng.random() < 0.5:  # the champion left: that is the shock
        return 7 * shock_week + rng.randrange(7)
    return None
