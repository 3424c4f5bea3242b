"""Ingest under more concurrent clients than it can serve: ``python -m bench.ingest --connections 1000 --batch 50``.

Each client holds one keep-alive connection and posts a batch, again and again, for ``--seconds``; on 503/429 it
waits Retry-After, as a well-behaved SDK does. The clients speak HTTP/1.1 over raw asyncio streams (a few
microseconds per request), so the load generator leaves the two cores to ingest. Run twice: "before" with no
bound on requests in flight (CHURNWATCH_MAX_IN_FLIGHT=1000000) and "after" with the limit.

Ingest is served by uvicorn with the keep-alive its settings choose (``http_keep_alive_seconds``), as
``churnwatch ingest`` does once services/cli.py passes it; with uvicorn's default 5 s, clients told Retry-After > 5
find their connection closed (counted under "other").
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from bench.ingest import make_batches
from services.demo.processes import ServiceProcess
from services.demo.sandbox import private_sandbox
from services.ingest.settings import IngestSettings
from shared.api_keys import Scope
from shared.key_store import issue_key
from tests.support.smtp_server import free_port

CLIENT_TIMEOUT_SECONDS = 60.0


def serve() -> None:
    """Ingest under uvicorn with its settings' keep-alive (what services/cli.py should pass)."""
    import uvicorn

    from services.ingest.app import create_app
    from shared.service_app import configure_logging

    settings = IngestSettings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )


class IngestProcess(ServiceProcess):
    def start(self) -> IngestProcess:
        command = "from bench.ingest_overload import serve; serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", command], env=self._env, text=True)
        return self


@dataclass
class Tally:
    accepted: list[float] = field(default_factory=list)  # client latency of each 202
    shed: list[float] = field(default_factory=list)  # of each 503/429
    other: dict[str, int] = field(default_factory=dict)  # any other answer, a timeout, a closed connection

    def count(self, what: str) -> None:
        self.other[what] = self.other.get(what, 0) + 1


def requests(key: str, batch: int, distinct: int = 20) -> list[bytes]:
    out = []
    for events in make_batches(batch * distinct, batch):
        body = json.dumps({"events": events}).encode()
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers


async def client(port: int, payloads: list[bytes], offset: int, until: float, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = offset
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            writer.write(payloads[n % len(payloads)])
            n += 1
            try:
                status, headers = await asyncio.wait_for(read_response(reader), CLIENT_TIMEOUT_SECONDS)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                tally.count(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            done = time.monotonic()
            if done > until:
                break  # only answers within the measured span count (the span is the rate's denominator)
            if status == 202:
                tally.accepted.append(done - started)
            elif status in (429, 503):
                tally.shed.append(done - started)
                await asyncio.sleep(min(float(headers.get("retry-after", "1")), until - done))
            else:
                tally.count(str(status))
    finally:
        writer.close()


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


async def one_side(label: str, env: dict[str, str], key: str, connections: int, batch: int, seconds: float) -> str:
    ingest = IngestProcess("ingest", env, free_port()).start()
    try:
        await asyncio.to_thread(ingest.wait_ready, 60)
        payloads = requests(key, batch)
        await asyncio.gather(*(client(ingest.port, payloads, i, time.monotonic() + 3, Tally()) for i in range(8)))
        tally = Tally()
        until = time.monotonic() + seconds
        await asyncio.gather(*(client(ingest.port, payloads, i, until, tally) for i in range(connections)))
        wall = seconds  # answers after ``until`` are not counted; requests in flight then are left out
    finally:
        ingest.stop()
    a, s = tally.accepted, tally.shed
    return (
        f"{label:7} accepted {len(a) / wall:6.1f} req/s ({len(a) * batch / wall:7.0f} events/s), "
        f"latency p50 {quantile(a, 0.5):6.2f} s p99 {quantile(a, 0.99):6.2f} s max {max(a, default=0):6.2f} s | "
        f"shed {len(s) / wall:6.1f}/s p50 {quantile(s, 0.5):5.3f} s p99 {quantile(s, 0.99):5.3f} s | "
        f"other {tally.other or 'none'}"
    )


async def run_overload(connections: int, batch: int, seconds: float, max_in_flight: int | None) -> None:
    limit = max_in_flight or IngestSettings.model_fields["max_in_flight"].default
    async with private_sandbox("bench", events_partitions=6) as (name, settings):
        key = await issue_key(settings, name="bench", scopes=frozenset({Scope.WRITE_EVENTS}))
        env = {
            **name.env,
            "CHURNWATCH_LOG_LEVEL": "WARNING",
            "CHURNWATCH_RATE_LIMIT_PER_SECOND": "100000",
            "CHURNWATCH_RATE_LIMIT_BURST": "100000",
        }
        print(f"{connections} clients, batches of {batch}, {seconds:.0f} s per side, Retry-After honoured")
        print(
            await one_side("before", {**env, "CHURNWATCH_MAX_IN_FLIGHT": "1000000"}, key, connections, batch, seconds)
        )
        print(
            await one_side("after", {**env, "CHURNWATCH_MAX_IN_FLIGHT": str(limit)}, key, connections, batch, seconds)
        )
        print(f"(after: CHURNWATCH_MAX_IN_FLIGHT={limit})")
