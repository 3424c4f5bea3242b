"""Scenario 2: PostgreSQL stopped while events flow (issue 13's "found already" #1). Events keep reaching Kafka
through ingest (a key known to be valid stays valid for a bounded time), the scorer and the alerter report not
ready and recover by themselves once the database is back, with nothing lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.faults.harness import DELIVERY_WORKERS, Scenario
from tests.support.fault_stack import FaultStack
from tests.support.load import steady_logins

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_postgres_stopped_while_events_flow(scenario: Scenario, fault_stack: FaultStack) -> None:
    scale = scenario.scale
    await scenario.start()
    load = scenario.start_load(steady_logins("steady", accounts=50))
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    outages: list[dict[str, Any]] = []
    for k, seconds in enumerate(scale.pg_outages):
        accepted_before = len(load.figures.acknowledged)
        await asyncio.to_thread(fault_stack.postgres.stop)
        went_down = time.monotonic()
        not_ready: set[str] = set()
        while time.monotonic() - went_down < seconds:  # the outage lasts this long; we watch the probes meanwhile
            not_ready.update(await scenario.pipeline.not_ready())
            await asyncio.sleep(1.0)
        scenario.pipeline.check_running()
        accepted_during = len(load.figures.acknowledged) - accepted_before
        await asyncio.to_thread(fault_stack.postgres.start)
        recover = await scenario.recovered(time.monotonic(), within=300)
        scenario.crash_edge += DELIVERY_WORKERS  # a lost connection mid-send is the documented edge
        outages.append(
            {
                "seconds": seconds,
                "events_accepted_during": accepted_during,
                "not_ready_during": sorted(not_ready),
                "recover_seconds": round(recover, 2),
            }
        )
        await scenario.sliding_accounts(1, f"slide-o{k}")
    scenario.notes["outages"] = outages
    row = await scenario.finish()
    assert not row["violations"], row["violations"]
    for o in outages:
        assert o["events_accepted_during"] > 0, f"ingest accepted nothing while PostgreSQL was down: {o}"
        assert {"scorer-0", "alerter"} <= set(o["not_ready_during"]), f"not ready while the database was down: {o}"
        assert "ingest" not in o["not_ready_during"], f"ingest's readiness must follow its event path only: {o}"
