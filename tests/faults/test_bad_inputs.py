"""Scenario 5: 1% poison records written straight to the events topic, 10% duplicate events, out-of-order and
late events, and a client whose clock is 3 hours fast. Dead letters are exactly the poison (I4); duplicates
count once, late events count as late, the fast clock's events count on their (future) day (I1)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.harness import Scenario
from tests.support.load import MessyClients, SteadyLoad

pytestmark = [pytest.mark.integration, pytest.mark.faults]

POISON_SHAPES = (b"{not json %d", b'{"kind": "usage", "n": %d}', b"\xff\xfe binary %d", b'{"kind": "nope", "n": %d}')


async def test_poison_duplicates_disorder_late_and_a_fast_clock(scenario: Scenario) -> None:
    scale = scenario.scale
    await scenario.start()
    clients = MessyClients("messy", accounts=40)
    load = scenario.start_load(clients.make)
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    producer = AIOKafkaProducer(bootstrap_servers=scenario.box.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for _ in range(int(scale.burst_seconds * 3)):
            await asyncio.sleep(1.0)  # poison arrives spread over the run
            await _poison(scenario, producer, load, share=0.01)
    finally:
        await producer.stop()
    scenario.notes["inputs"] = dict(clients.kinds)
    row = await scenario.finish()
    assert clients.kinds["dup"] and clients.kinds["late"] and clients.kinds["ahead"], clients.kinds
    assert row["dead_letters"] >= len(scenario.poison) > 0
    assert not row["violations"], row["violations"]


async def _poison(scenario: Scenario, producer: AIOKafkaProducer, load: SteadyLoad, share: float) -> None:
    """Tops the poison up to ``share`` of the events offered so far."""
    topic = scenario.box.settings.topics.events
    while len(scenario.poison) < share * load.figures.events_offered:
        n = len(scenario.poison)
        value = POISON_SHAPES[n % len(POISON_SHAPES)] % n
        scenario.poison.add(value)
        with contextlib.suppress(Exception):
            await producer.send_and_wait(topic, value, key=f"poison-{n}".encode())
