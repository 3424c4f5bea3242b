"""How big each fault scenario is: CHURNWATCH_FAULTS_SCALE=small (default; the bounded run inside `make test`,
the whole folder in a few minutes) or full (`make faults`: the sizes issue 13 asks for).
CHURNWATCH_FAULTS_RATE overrides the sustained load (events/s) of either."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Scale:
    name: str
    rate: float  # sustained events/s from the load generator
    sliding_accounts: int  # accounts that raise alerts in each scenario
    settle_seconds: float  # how long the pipeline may take to drain after the load stops
    broker_kills: int
    broker_down_seconds: float
    pg_outages: tuple[float, ...]  # seconds PostgreSQL stays stopped, one outage each
    scorer_kills: int
    storm_seconds: float  # instances joining and leaving
    storm_period_seconds: float
    slack_500_seconds: float
    slack_429_seconds: float
    smtp_down_seconds: float
    burst_seconds: float
    backoff_seconds: float  # the alerter's delivery backoff base and cap
    backoff_cap_seconds: float


SMALL = Scale(
    name="small",
    rate=100.0,
    sliding_accounts=3,
    settle_seconds=90.0,
    broker_kills=1,
    broker_down_seconds=4.0,
    pg_outages=(8.0,),
    scorer_kills=3,
    storm_seconds=12.0,
    storm_period_seconds=4.0,
    slack_500_seconds=10.0,
    slack_429_seconds=4.0,
    smtp_down_seconds=12.0,
    burst_seconds=6.0,
    # scaled down with the outages, so a small run retries about as often per outage as a full one; rows are
    # given up only after CHURNWATCH_DELIVERY_MAX_AGE_SECONDS (a day), so neither size kills a delivery
    backoff_seconds=0.2,
    backoff_cap_seconds=1.0,
)

FULL = Scale(
    name="full",
    rate=300.0,
    sliding_accounts=10,
    settle_seconds=900.0,
    broker_kills=3,
    broker_down_seconds=15.0,
    pg_outages=(60.0, 400.0),
    scorer_kills=10,
    storm_seconds=180.0,
    storm_period_seconds=5.0,
    slack_500_seconds=120.0,
    slack_429_seconds=120.0,
    smtp_down_seconds=240.0,
    burst_seconds=60.0,
    backoff_seconds=1.0,  # the alerter's defaults
    backoff_cap_seconds=300.0,
)


def current_scale() -> Scale:
    name = os.environ.get("CHURNWATCH_FAULTS_SCALE", "small").strip().lower()
    scales = {"small": SMALL, "full": FULL}
    if name not in scales:
        raise ValueError(f"CHURNWATCH_FAULTS_SCALE must be small or full, not {name!r}")
    rate = os.environ.get("CHURNWATCH_FAULTS_RATE")
    return replace(scales[name], rate=float(rate)) if rate else scales[name]
