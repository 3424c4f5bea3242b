"""PostgreSQL unreachable for ingest only (a TCP proxy in front of the shared PostgreSQL, cut mid-test): events
with a key known valid keep reaching Kafka (202), an unknown key gets 503 auth_unavailable and is never let in,
/readyz stays 200 with a note; when the database answers again a new key works and a key revoked meanwhile is
refused within the cache time. The log has one line per state change, not one per refused request."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from services.demo.processes import ServiceProcess
from shared.api_keys import Scope
from shared.key_store import issue_key, revoke_key
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.tcp_proxy import TcpProxy
from tests.support.topic_reader import event_ids_on

pytestmark = pytest.mark.integration

KEY_CACHE_SECONDS = 1.0
WRITE = frozenset({Scope.WRITE_EVENTS})


@pytest.fixture
def db_proxy(sandbox: Sandbox) -> Iterator[TcpProxy]:
    url = make_url(sandbox.settings.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
async def ingest(
    sandbox: Sandbox, db_proxy: TcpProxy, ports: dict[str, int], tmp_path: Path
) -> AsyncIterator[tuple[ServiceProcess, Path]]:
    proxied = make_url(sandbox.settings.database_url).set(port=db_proxy.port)
    env = {
        **sandbox.env,
        "CHURNWATCH_DATABASE_URL": proxied.render_as_string(hide_password=False),
        "CHURNWATCH_KEY_CACHE_SECONDS": str(KEY_CACHE_SECONDS),
        "CHURNWATCH_AUTH_STALE_GRACE_SECONDS": "120",
        "CHURNWATCH_LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "ingest.log"
    with log_path.open("w") as log_file:
        proc = ServiceProcess("ingest", env, ports["ingest"], stdout=log_file).start()
        try:
            await asyncio.to_thread(proc.wait_ready, 60)
            yield proc, log_path
        finally:
            proc.stop()


def batch(prefix: str, n: int = 5) -> tuple[list[str], dict[str, Any]]:
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    ids = [f"{prefix}-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    events = [
        {"kind": "usage", "action": "login", "event_id": i, "account_id": "acct-db", "occurred_at": at} for i in ids
    ]
    return ids, {"events": events}


@pytest.mark.parametrize("outage", ["refused", "stalled"])
async def test_events_flow_while_postgresql_is_unreachable_and_auth_recovers(
    ingest: tuple[ServiceProcess, Path], db_proxy: TcpProxy, sandbox: Sandbox, outage: str
) -> None:
    """``refused``: PostgreSQL's port closed (connections reset and refused); ``stalled``: nothing gets through
    and nothing is refused either, as in a network partition (each lookup gives up after its 2 s timeout)."""
    proc, log_path = ingest
    valid = await issue_key(sandbox.settings, name="valid", scopes=WRITE)
    doomed = await issue_key(sandbox.settings, name="doomed", scopes=WRITE)
    acknowledged: set[str] = set()

    async with httpx.AsyncClient(base_url=proc.url, timeout=30) as client:

        async def post(key: str, prefix: str) -> httpx.Response:
            ids, body = batch(prefix)
            resp = await client.post("/v1/events", json=body, headers={"Authorization": f"Bearer {key}"})
            if resp.status_code == 202:
                acknowledged.update(ids)
            return resp

        assert (await post(valid, "before")).status_code == 202
        assert (await post(doomed, "before")).status_code == 202
        assert db_proxy.connections > 0, "ingest did not reach PostgreSQL through the proxy"

        db_proxy.cut() if outage == "refused" else db_proxy.stall()
        newcomer = await issue_key(sandbox.settings, name="newcomer", scopes=WRITE)  # the real DB still works

        async def noted() -> dict[str, Any] | None:
            resp = await client.get("/readyz")
            body: dict[str, Any] = resp.json()
            return body if "database" in body.get("notes", {}) else None

        ready = await await_until(noted, within=30, what="/readyz to note the database outage")
        assert ready is not None and ready["ready"] is True, ready
        assert (await client.get("/readyz")).status_code == 200

        during: list[httpx.Response] = []
        until = time.monotonic() + 3 * KEY_CACHE_SECONDS  # well past the key's cache time
        while time.monotonic() < until:
            during.append(await post(valid, "during"))
        assert {r.status_code for r in during} == {202}, [r.text for r in during if r.status_code != 202]
        assert _stale_answers((await client.get("/metrics")).text) > 0, "never answered from a stale verdict"

        for unknown in (newcomer, "cw_nope_nope"):
            refused = await post(unknown, "unknown")
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "auth_unavailable" and refused.headers["Retry-After"].isdigit()

        assert await revoke_key(sandbox.engine, doomed.split("_")[1])  # revoked while ingest cannot see it
        assert (await post(doomed, "stale")).status_code == 202  # documented: known valid, within its grace

        db_proxy.restore()

        async def newcomer_accepted() -> bool:
            return (await post(newcomer, "after")).status_code == 202

        await await_until(newcomer_accepted, within=30, what="a new key to work once PostgreSQL answers")

        async def doomed_refused() -> bool:
            return (await post(doomed, "revoked")).status_code == 401

        await await_until(doomed_refused, within=KEY_CACHE_SECONDS + 5, what="the revoked key to be refused")
        await await_until(lambda: _no_note(client), within=30, what="/readyz to drop the database note")
        assert (await post(valid, "after")).status_code == 202

    on_topic = await event_ids_on(
        sandbox.settings.kafka_bootstrap_servers,
        sandbox.settings.topics.events,
        acknowledged.issubset,
        within=60,
        what="every acknowledged event on the topic",
    )
    assert acknowledged <= on_topic, f"acknowledged but not on Kafka: {sorted(acknowledged - on_topic)}"
    log = await asyncio.to_thread(log_path.read_text)
    db_lines = [line for line in log.splitlines() if "API key database" in line]
    assert 1 <= len(db_lines) <= 4, db_lines  # lost, (reminder), back: not one per refused request


def _stale_answers(metrics: str) -> float:
    line = next(x for x in metrics.splitlines() if x.startswith('churnwatch_key_lookups_total{answer="stale"}'))
    return float(line.split()[-1])


async def _no_note(client: httpx.AsyncClient) -> bool:
    resp = await client.get("/readyz")
    return resp.status_code == 200 and "database" not in resp.json().get("notes", {})
