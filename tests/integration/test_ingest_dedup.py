"""A client retry must never count twice: ingest forwards at least once, the scorer counts each
(account_id, event_id) once. Posted twice natively and twice over the Segment API, counted once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.demo.processes import ServiceProcess, running
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until, wait_until
from tests.support.scorer_stream import seen_event_count

pytestmark = pytest.mark.integration


@pytest.fixture
def services(sandbox: Sandbox, ports: dict[str, int]) -> Iterator[dict[str, ServiceProcess]]:
    env = {**sandbox.env, "CHURNWATCH_LOG_LEVEL": "WARNING"}
    with running({name: ports[name] for name in ("ingest", "scorer")}, env) as procs:
        yield procs


def scorer_events(scorer: ServiceProcess, outcome: str) -> float:
    metrics = httpx.get(f"{scorer.url}/metrics").text
    found = re.search(rf'^churnwatch_scorer_events_total{{outcome="{outcome}"}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


async def test_the_same_events_sent_twice_count_once(services: dict[str, ServiceProcess], sandbox: Sandbox) -> None:
    key = await issue_key(sandbox.settings, name="dedup", scopes=frozenset(Scope))
    ingest, scorer = services["ingest"].url, services["scorer"]
    at = datetime.now(UTC) - timedelta(hours=2)
    native = {
        "events": [
            {
                "kind": "usage",
                "action": "login",
                "event_id": f"d-{i}",
                "account_id": f"acct-d{i % 3}",
                "occurred_at": at.isoformat(),
            }
            for i in range(30)
        ]
    }
    segment = {
        "sentAt": at.isoformat(),
        "batch": [
            {
                "type": "track",
                "event": "Ticket Opened",
                "messageId": f"s-{i}",
                "userId": "u",
                "timestamp": at.isoformat(),
                "properties": {"ticket_id": f"T{i}"},
                "context": {"groupId": "acct-d0"},
            }
            for i in range(10)
        ],
    }
    async with httpx.AsyncClient(base_url=ingest, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(2):  # a client that retries after, say, a timeout on its side
            assert (await client.post("/v1/events", json=native)).status_code == 202
            assert (await client.post("/v1/batch", json=segment)).status_code == 200

    wait_until(lambda: scorer_events(scorer, "duplicate") >= 40, timeout=90, what="the scorer to see 40 duplicates")
    assert scorer_events(scorer, "counted") == 40
    assert scorer_events(scorer, "duplicate") == 40

    assert await await_until(lambda: seen_event_count(sandbox.engine), within=30, what="seen events") == 40
