"""Scenario 1: the broker killed with SIGKILL and restarted during load. Ingest answers 503 with Retry-After while
it is down and accepts again by itself; the scorer and the alerter resume; I1-I4 hold."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import Scenario
from tests.support.fault_stack import FaultStack
from tests.support.load import steady_logins

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_broker_sigkill_and_restart_under_load(scenario: Scenario, fault_stack: FaultStack) -> None:
    scale = scenario.scale
    await scenario.start()
    load = scenario.start_load(steady_logins("steady", accounts=50))
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    refused_while_down = 0
    for k in range(scale.broker_kills):
        before = load.figures.answers[503]
        await asyncio.to_thread(fault_stack.kafka.kill)
        await asyncio.sleep(scale.broker_down_seconds)  # the outage's length, not a synchronisation
        refused_while_down += load.figures.answers[503] - before
        await asyncio.to_thread(fault_stack.kafka.start)
        await scenario.recovered(time.monotonic())
        await scenario.sliding_accounts(1, f"slide-k{k}")
    scenario.notes["503_while_down"] = refused_while_down
    scenario.notes["503_latency"] = load.figures.latency_quantiles(503)
    row = await scenario.finish()
    assert refused_while_down > 0, "ingest never answered 503 while the broker was dead"
    assert load.figures.missing_retry_after == 0, "a 503/429 without Retry-After"
    assert not load.figures.unexpected_5xx(), load.figures.unexpected_5xx()
    assert not load.figures.no_answer, f"requests left without an answer: {dict(load.figures.no_answer)}"
    assert scenario.notes["503_latency"]["p50"] < 2.0, f"slow 503s while the broker is down: {scenario.notes}"
    assert not row["violations"], row["violations"]
