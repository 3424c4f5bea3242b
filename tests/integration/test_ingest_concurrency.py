"""Ingest under concurrent batches racing for one partition of the real broker: every request is accepted
(Kafka is healthy, so no 503) and Kafka holds every accepted event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.demo.processes import ServiceProcess, running
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.integration.conftest import Sandbox
from tests.support.topic_reader import event_ids_on

pytestmark = pytest.mark.integration

REQUESTS, BATCH, CONCURRENCY = 48, 500, 16


@pytest.fixture
def ingest(sandbox: Sandbox, ports: dict[str, int]) -> Iterator[ServiceProcess]:
    env = {**sandbox.env, "CHURNWATCH_RATE_LIMIT_PER_SECOND": "10000", "CHURNWATCH_RATE_LIMIT_BURST": "10000"}
    with running({"ingest": ports["ingest"]}, env) as procs:
        yield procs["ingest"]


async def test_batches_racing_for_one_partition_are_all_accepted(ingest: ServiceProcess, sandbox: Sandbox) -> None:
    key = await issue_key(sandbox.settings, name="race", scopes=frozenset({Scope.WRITE_EVENTS}))
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    bodies = [
        {
            "events": [
                {
                    "kind": "usage",
                    "action": "login",
                    "event_id": f"r{n}-{i}",
                    "account_id": "acct-hot",
                    "occurred_at": at,
                }
                for i in range(BATCH)
            ]
        }
        for n in range(REQUESTS)
    ]
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=ingest.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as c:

        async def sender() -> None:
            while bodies:
                statuses.append((await c.post("/v1/events", json=bodies.pop())).status_code)

        await asyncio.gather(*(sender() for _ in range(CONCURRENCY)))
    assert statuses == [202] * REQUESTS, sorted(statuses)
    expected = {f"r{n}-{i}" for n in range(REQUESTS) for i in range(BATCH)}
    topic = sandbox.settings.topics.events
    on_topic = await event_ids_on(
        sandbox.settings.kafka_bootstrap_servers, topic, lambda seen: len(seen) >= len(expected), what="the events"
    )
    assert on_topic == expected
