"""Retry-After vs keep-alive: a client that waits exactly Retry-After and sends again on the same connection gets
an answer (with Retry-After equal to uvicorn's 5 s keep-alive, six clients met a closed socket instead).

Served by uvicorn with the keep-alive the settings choose (``http_keep_alive_seconds``, what `churnwatch ingest`
passes to uvicorn), scaled down so the test is short: Retry-After 2 s, keep-alive 2 + 5 s."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.conftest import Sandbox
from tests.support.polling import wait_until
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def served(sandbox: Sandbox) -> Iterator[IngestSettings]:
    settings = IngestSettings(
        topic_prefix=sandbox.settings.topic_prefix,
        database_schema=sandbox.settings.database_schema,
        http_port=free_port(),
        auth_required=False,
        rate_limit_per_second=0.5,  # the second request waits 2 s: Retry-After 2
        rate_limit_burst=1,
        max_retry_after_seconds=2,
        unavailable_retry_after_seconds=2,
        http_keep_alive_seconds=7,
    )
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.http_port,
        timeout_keep_alive=settings.http_keep_alive_seconds,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=60, what="uvicorn to start ingest")
        yield settings
    finally:
        server.should_exit = True
        thread.join(30)


REQUEST = b"POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
EVENT = b'{"kind":"usage","action":"login","event_id":"ka-%d","account_id":"a","occurred_at":"2026-11-30T00:00:00Z"}'


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> dict[str, str]:
    """One request on an open connection; the response's status and headers (raises on a closed connection)."""
    event = EVENT % n
    writer.write(REQUEST % (len(event), event))
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    if not status:
        raise ConnectionError("the server closed the connection without an answer")
    headers = {"status": status.split()[1].decode()}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    await reader.readexactly(int(headers["content-length"]))
    return headers


async def test_a_client_honouring_retry_after_exactly_finds_its_connection_open(served: IngestSettings) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.http_port)
    assert (await exchange(reader, writer, 1))["status"] == "202"
    limited = await exchange(reader, writer, 2)
    assert limited["status"] == "429" and limited["retry-after"] == "2"
    await asyncio.sleep(float(limited["retry-after"]))  # the behaviour under test: wait exactly Retry-After
    assert (await exchange(reader, writer, 3))["status"] == "202"

    # and the test can tell: the server does close an idle connection, once its keep-alive has passed
    idle_from = time.monotonic()
    assert await asyncio.wait_for(reader.read(1), served.http_keep_alive_seconds + 5) == b""
    assert time.monotonic() - idle_from >= served.http_keep_alive_seconds - 0.5
    writer.close()
