"""Scenario 6 (issue 13, bug C): a rebalance while PostgreSQL is stopped. A second scorer joins the group while the
database is down, so the first one is assigned partitions it cannot claim (the claim and the stored offsets live
in PostgreSQL). They must stay paused, be claimed once the database is back, and then count every event once.

The first scorer is idle when the database stops (no load yet, sweeps far apart), so its rebalance callbacks run
at once rather than after the database is back: that is the path that used to leave partitions assigned by
Kafka but never claimed, folded by no one until the next rebalance. The load starts after the outage, so
events land on those partitions.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from shared.consumer_progress import scorer_group
from tests.faults.harness import Scenario
from tests.support.fault_stack import FaultStack
from tests.support.load import steady_logins
from tests.support.polling import await_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_SECONDS = 20.0  # longer than a join and the group's rebalance (session 10 s, heartbeat 3 s)


async def _lag_series(url: str, group: str) -> int:
    """How many churnwatch_consumer_lag series the process exports for the group (set after its polls)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        body = (await client.get(f"{url}/metrics")).text
    return len(re.findall(rf'^churnwatch_consumer_lag\{{group="{re.escape(group)}".*$', body, re.M))


async def test_rebalance_while_postgres_is_down(scenario: Scenario, fault_stack: FaultStack) -> None:
    scenario.pipeline.env["scorer"] = {"CHURNWATCH_SWEEP_INTERVAL_SECONDS": "3600"}  # an idle loop reads nothing
    await scenario.start(scorers=1)
    group = scorer_group(scenario.box.settings)
    partitions = scenario.box.settings.events_partitions

    async def polled_everything() -> bool:
        return await _lag_series(scenario.pipeline.url("scorer-0"), group) >= partitions

    await await_until(polled_everything, within=60, what="scorer-0 claimed its partitions and polled them")
    await asyncio.to_thread(fault_stack.postgres.stop)
    went_down = time.monotonic()
    scenario.pipeline.start("scorer-1", "scorer")  # joins: scorer-0's partitions are revoked and assigned again
    not_ready: set[str] = set()
    while time.monotonic() - went_down < OUTAGE_SECONDS:  # the outage lasts this long; we watch the probes meanwhile
        not_ready.update(await scenario.pipeline.not_ready())
        await asyncio.sleep(1.0)
    scenario.pipeline.check_running()
    await asyncio.to_thread(fault_stack.postgres.start)
    back = time.monotonic()
    scenario.start_load(steady_logins("steady", accounts=50))
    await scenario.sliding_accounts(scenario.scale.sliding_accounts, "slide-a")
    await scenario.recovered(back, within=180)
    scenario.notes["outage"] = {"seconds": OUTAGE_SECONDS, "not_ready_during": sorted(not_ready)}
    scenario.notes["claims_refused_logged"] = await asyncio.to_thread(_claims_refused, scenario)
    row = await scenario.finish()
    assert not row["violations"], row["violations"]
    assert {"scorer-0", "scorer-1"} <= not_ready, f"scorers ready while the database was down: {sorted(not_ready)}"


def _claims_refused(scenario: Scenario) -> dict[str, int]:
    """Per scorer, the log lines saying claims of assigned partitions failed (the path under test was taken)."""
    out = {}
    for name in ("scorer-0", "scorer-1"):
        log = scenario.box.logs / f"{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        out[name] = sum("claiming assigned partitions unavailable" in line for line in text.splitlines())
    return out
