"""Ingest past its capacity (CHURNWATCH_MAX_IN_FLIGHT=4, 120 clients at once): the excess is answered 503
``overloaded`` + Retry-After at once, nothing times out, nothing is a 500; clients that honour Retry-After all get
their batch accepted, and Kafka holds every event."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.demo.processes import REPO_ROOT, ServiceProcess, running
from shared.api_keys import Scope
from shared.key_store import issue_key
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.topic_reader import event_ids_on

pytestmark = pytest.mark.integration

CLIENTS, BATCH, MAX_IN_FLIGHT = 120, 200, 4


@pytest.fixture
def ingest(sandbox: Sandbox, ports: dict[str, int]) -> Iterator[ServiceProcess]:
    env = {
        **sandbox.env,
        "CHURNWATCH_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "CHURNWATCH_RATE_LIMIT_PER_SECOND": "100000",
        "CHURNWATCH_RATE_LIMIT_BURST": "100000",
        "CHURNWATCH_LOG_LEVEL": "WARNING",
    }
    with running({"ingest": ports["ingest"]}, env) as procs:
        yield procs["ingest"]


def body(n: int) -> dict[str, object]:
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return {
        "events": [
            {
                "kind": "usage",
                "action": "login",
                "event_id": f"ov{n}-{i}",
                "account_id": f"acct-{n % 7}",
                "occurred_at": at,
            }
            for i in range(BATCH)
        ]
    }


async def test_excess_requests_are_shed_at_once_and_retrying_clients_all_get_in(
    ingest: ServiceProcess, sandbox: Sandbox
) -> None:
    key = await issue_key(sandbox.settings, name="overload", scopes=frozenset({Scope.WRITE_EVENTS}))
    answers: list[tuple[int, float, httpx.Response]] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=ingest.url, timeout=30, limits=limits, headers={"Authorization": f"Bearer {key}"}
    ) as client:

        async def one_client(n: int) -> None:
            payload = json.dumps(body(n)).encode()
            for _ in range(60):
                started = time.monotonic()
                resp = await client.post("/v1/events", content=payload, headers={"Content-Type": "application/json"})
                answers.append((resp.status_code, time.monotonic() - started, resp))
                if resp.status_code != 503:
                    return
                await asyncio.sleep(float(resp.headers["Retry-After"]))  # the client under test honours it
            raise AssertionError(f"client {n} never got in")

        await asyncio.gather(*(one_client(n) for n in range(CLIENTS)))
        shed_total = _metric((await client.get("/metrics")).text, "churnwatch_ingest_shed_total")

    statuses = {status for status, _, _ in answers}
    assert statuses <= {202, 503}, sorted(statuses)
    shed = [(seconds, resp) for status, seconds, resp in answers if status == 503]
    assert shed, "nothing was shed: the limit did not act"
    assert all(r.json()["error"]["code"] == "overloaded" for _, r in shed)
    assert {int(r.headers["Retry-After"]) for _, r in shed} <= set(range(1, 11))  # 1 s, more as overload grows
    assert shed_total >= len(shed)
    assert sum(1 for status, _, _ in answers if status == 202) == CLIENTS

    expected = {f"ov{n}-{i}" for n in range(CLIENTS) for i in range(BATCH)}
    topic = sandbox.settings.topics.events
    on_topic = await event_ids_on(
        sandbox.settings.kafka_bootstrap_servers, topic, lambda seen: len(seen) >= len(expected), what="the events"
    )
    assert on_topic == expected


HOLD_SECONDS = 10.0


async def test_shed_requests_do_not_wait_for_a_slot(ingest: ServiceProcess, sandbox: Sandbox) -> None:
    """Every slot held by a request whose body is still arriving (as long as the test likes): further requests
    are answered at once, long before any slot frees, and the held ones are accepted when their bodies end."""
    key = await issue_key(sandbox.settings, name="held", scopes=frozenset({Scope.WRITE_EVENTS}))
    held = [await HeldRequest.open(ingest.port, key, json.dumps(body(1000 + n)).encode()) for n in range(MAX_IN_FLIGHT)]
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:

        async def shed_now() -> bool:
            return (await c.post("/v1/events", json=body(2000))).status_code == 503

        await await_until(shed_now, within=HOLD_SECONDS / 2, what="the held requests to fill every slot")
        started = time.monotonic()
        answers = await asyncio.gather(*(c.post("/v1/events", json=body(3000 + n)) for n in range(30)))
        waited = time.monotonic() - started
        assert [r.status_code for r in answers] == [503] * 30
        assert waited < HOLD_SECONDS / 2, f"30 shed requests took {waited:.1f} s: they waited for a slot"
        assert (await c.get("/readyz")).status_code == 200  # probes are exempt
        assert [await h.finish() for h in held] == [202] * MAX_IN_FLIGHT
        assert (await c.post("/v1/events", json=body(4000))).status_code == 202


class HeldRequest:
    """A POST whose headers and first body byte are sent, the rest only on ``finish``: a request in flight."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes) -> None:
        self._reader, self._writer, self._rest = reader, writer, rest

    @classmethod
    async def open(cls, port: int, key: str, payload: bytes) -> HeldRequest:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        writer.write(head + payload[:1])
        await writer.drain()
        return cls(reader, writer, payload[1:])

    async def finish(self) -> int:
        self._writer.write(self._rest)
        await self._writer.drain()
        status_line = await asyncio.wait_for(self._reader.readline(), 30)
        self._writer.close()
        return int(status_line.split()[1])


def _metric(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[-1])


def test_the_overload_bench_runs_and_prints_both_sides(local_stack: None) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest",
            "--connections",
            "40",
            "--batch",
            "10",
            "--seconds",
            "2",
            "--max-in-flight",
            "4",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith(("before", "after"))}
    assert set(lines) == {"before", "after"}, done.stdout
    assert "other none" in lines["after"], lines["after"]  # no timeouts, no closed connections, no 5xx but 503
    assert float(lines["after"].split("shed")[1].split("/s")[0]) > 0, lines["after"]  # 4 slots, 40 clients
