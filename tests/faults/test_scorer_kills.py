"""Scenario 3: the scorer killed with SIGKILL at random points, and a rebalance storm (a second instance joining
and leaving every few seconds): the group settles, nothing is lost or counted twice, offsets only move forward."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.faults.harness import Scenario
from tests.support.load import steady_logins

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_scorer_sigkilled_at_random_points(scenario: Scenario) -> None:
    scale = scenario.scale
    rng = random.Random(13)
    await scenario.start()
    scenario.start_load(steady_logins("steady", accounts=50))
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    for _ in range(scale.scorer_kills):
        await asyncio.sleep(rng.uniform(0.5, 4.0))  # a random point in the stream, not a synchronisation
        scenario.pipeline.kill("scorer-0")
        scenario.pipeline.start("scorer-0", "scorer")
        await scenario.recovered(time.monotonic())
    scenario.notes["kills"] = scale.scorer_kills
    row = await scenario.finish()
    assert not row["violations"], row["violations"]


async def test_rebalance_storm(scenario: Scenario) -> None:
    scale = scenario.scale
    await scenario.start(scorers=2)
    scenario.start_load(steady_logins("steady", accounts=50))
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    started, changes = time.monotonic(), 0
    while time.monotonic() - started < scale.storm_seconds:
        await asyncio.sleep(scale.storm_period_seconds / 2)  # the storm's rhythm
        scenario.pipeline.stop("scorer-1")  # leaves (SIGTERM: revoke, commit)
        await asyncio.sleep(scale.storm_period_seconds / 2)
        scenario.pipeline.start("scorer-1", "scorer")  # joins
        changes += 2
    settle_from = time.monotonic()
    await scenario.recovered(settle_from)
    scenario.notes["membership_changes"] = changes
    row = await scenario.finish()
    assert not row["violations"], row["violations"]
