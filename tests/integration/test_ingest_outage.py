"""Kafka stopped mid-test: ingest answers 503 + Retry-After and accepts nothing; when Kafka is back, ingest
recovers by itself, and every event that got a 2xx is on the topic. Runs its own broker, never the shared one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.demo.processes import REPO_ROOT, ServiceProcess
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from shared.kafka import create_topics
from shared.settings import CommonSettings
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.smtp_server import free_port
from tests.support.topic_reader import event_ids_on

pytestmark = pytest.mark.integration


class OwnBroker:
    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self._env = {
            **os.environ,
            "CHURNWATCH_HOME": str(home),
            "CHURNWATCH_KAFKA_PORT": str(self.port),
            "CHURNWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, action: str) -> None:
        proc = subprocess.run(
            ["bash", str(REPO_ROOT / "deploy" / "kafka.sh"), action],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode == 0, f"kafka.sh {action} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture
def broker(tmp_path: Path, local_stack: None) -> Iterator[OwnBroker]:
    b = OwnBroker(tmp_path / "churnwatch-home")
    b.run("start")
    try:
        yield b
    finally:
        b.run("kill")


@pytest.fixture
def ingest_log(tmp_path: Path) -> Path:
    return tmp_path / "ingest.log"


@pytest.fixture
async def ingest_on_own_broker(
    broker: OwnBroker, sandbox: Sandbox, ports: dict[str, int], ingest_log: Path
) -> AsyncIterator[ServiceProcess]:
    settings = CommonSettings(kafka_bootstrap_servers=broker.bootstrap, topic_prefix=sandbox.settings.topic_prefix)
    await create_topics(settings)
    env = {
        **sandbox.env,
        "CHURNWATCH_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "CHURNWATCH_PRODUCE_TIMEOUT_SECONDS": "3",
        "CHURNWATCH_LOG_LEVEL": "WARNING",
    }
    with ingest_log.open("w") as log_file:
        proc = ServiceProcess("ingest", env, ports["ingest"], stdout=log_file).start()
        try:
            await asyncio.to_thread(proc.wait_ready, 60)
            yield proc
        finally:
            proc.stop()


async def test_kafka_down_gives_503_then_ingest_recovers_and_nothing_accepted_is_lost(
    broker: OwnBroker, ingest_on_own_broker: ServiceProcess, sandbox: Sandbox
) -> None:
    key = await issue_key(sandbox.settings, name="outage", scopes=frozenset(Scope))
    acknowledged: set[str] = set()
    answers: list[int] = []

    async def post(client: httpx.AsyncClient) -> httpx.Response:
        ids = [f"o-{uuid.uuid4().hex[:12]}" for _ in range(5)]
        events = [
            {
                "kind": "usage",
                "action": "login",
                "event_id": i,
                "account_id": "acct-o",
                "occurred_at": "2026-11-01T00:00:00Z",
            }
            for i in ids
        ]
        resp = await client.post("/v1/events", json={"events": events})
        answers.append(resp.status_code)
        if resp.is_success:
            acknowledged.update(ids)
        return resp

    async with httpx.AsyncClient(
        base_url=ingest_on_own_broker.url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        assert (await post(client)).status_code == 202
        await asyncio.to_thread(broker.run, "stop")
        refused = await await_until(lambda: _refused(post, client), within=60, what="a 503 while Kafka is stopped")
        assert refused is not None and refused.headers["Retry-After"].isdigit()
        assert refused.json()["error"]["code"] == "kafka_unavailable"
        await asyncio.to_thread(broker.run, "start")
        await await_until(lambda: _accepted(post, client), within=90, what="ingest to accept again by itself")
        assert (await post(client)).status_code == 202

    assert 503 in answers and answers[-1] == 202
    on_topic = await event_ids_on(
        broker.bootstrap,
        sandbox.settings.topics.events,
        acknowledged.issubset,
        within=60,
        what="every acknowledged event",
    )
    assert acknowledged <= on_topic, f"acknowledged but lost: {sorted(acknowledged - on_topic)}"


Post = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def _refused(post: Post, client: httpx.AsyncClient) -> httpx.Response | None:
    resp = await post(client)
    return resp if resp.status_code == 503 else None


async def _accepted(post: Post, client: httpx.AsyncClient) -> bool:
    return (await post(client)).status_code == 202


async def test_once_the_broker_is_known_down_503s_come_at_once_and_intake_resumes_by_itself(
    broker: OwnBroker, ingest_on_own_broker: ServiceProcess, sandbox: Sandbox, ingest_log: Path
) -> None:
    """The broker killed (SIGKILL): after the first refusal (or the probe noticing), every request is answered
    503 + Retry-After in well under the produce timeout (3 s here; 10 s by default), not after waiting for it."""
    key = await issue_key(sandbox.settings, name="fast-503", scopes=frozenset(Scope))
    body = {
        "events": [
            {
                "kind": "usage",
                "action": "login",
                "event_id": f"f-{uuid.uuid4().hex}",
                "account_id": "acct-f",
                "occurred_at": "2026-11-01T00:00:00Z",
            }
        ]
    }
    async with httpx.AsyncClient(
        base_url=ingest_on_own_broker.url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        assert (await client.post("/v1/events", json=body)).status_code == 202
        await asyncio.to_thread(broker.run, "kill")

        async def refused() -> bool:
            return (await client.post("/v1/events", json=body)).status_code == 503

        await await_until(refused, within=30, what="a first 503 after the broker died")
        timings = []
        for _ in range(20):
            started = time.monotonic()
            resp = await client.post("/v1/events", json=body)
            timings.append(time.monotonic() - started)
            assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit(), resp.text
        assert max(timings) < 0.5, f"503s took up to {max(timings):.2f} s: still waiting for the broker"
        assert "churnwatch_ingest_broker_up 0.0" in (await client.get("/metrics")).text

        await asyncio.to_thread(broker.run, "start")

        async def accepted() -> bool:
            return (await client.post("/v1/events", json=body)).status_code == 202

        await await_until(accepted, within=90, what="ingest to accept again without a restart")
        assert "churnwatch_ingest_broker_up 1.0" in (await client.get("/metrics")).text

    log = (await asyncio.to_thread(ingest_log.read_text)).splitlines()
    state_lines = [line for line in log if "Kafka (ingest's producer)" in line]
    assert 2 <= len(state_lines) <= 4, state_lines  # lost, back (a reminder at most): not one per request
    reconnects = [line for line in log if "Unable connect to node" in line]
    assert len(reconnects) <= 3, reconnects  # aiokafka's line per reconnect attempt, held to one a minute
