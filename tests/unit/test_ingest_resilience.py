"""Ingest under broker loss and overload, pure: when to answer 503 at once, when to probe, who is shed,
and that no Retry-After outlasts the keep-alive."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.ingest.admission import InFlightLimit, RetryAfterPolicy
from services.ingest.broker_health import BrokerHealth, watch_broker
from services.ingest.settings import KEEP_ALIVE_MARGIN_SECONDS, IngestSettings
from tests.support.polling import await_until


async def _now(value: bool) -> bool:
    return value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_broker_is_down_after_a_failed_send_until_a_probe_or_an_ack_says_otherwise() -> None:
    clock = Clock()
    health = BrokerHealth(clock=clock)
    assert health.up and not health.needs_probe(1.0)
    clock.now += 1.0
    assert health.needs_probe(1.0)  # nothing acknowledged for a second: worth a look
    health.acknowledged()
    assert not health.needs_probe(1.0)
    health.failed("KafkaTimeoutError")
    assert not health.up and health.needs_probe(1.0)
    health.probed(False)
    assert not health.up
    health.probed(True)
    assert health.up
    health.probed(False)  # a probe that finds no broker is enough to stop waiting for it
    assert not health.up
    health.acknowledged()
    assert health.up


async def test_watch_broker_probes_while_down_and_recovers_by_itself() -> None:
    health = BrokerHealth()
    health.failed("send timed out")
    answers = iter([False, False, True])
    probes = 0

    async def probe() -> bool:
        nonlocal probes
        probes += 1
        return next(answers)

    stop = asyncio.Event()
    task = asyncio.create_task(watch_broker(health, probe, 0.01, stop))
    await await_until(lambda: _now(health.up), within=5, what="the broker to be up again", interval=0.01)
    stop.set()
    await task
    assert probes == 3


class HeldApp:
    """An ASGI app whose requests wait until released: requests in flight, held as long as the test likes."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def test_requests_past_the_limit_get_503_with_retry_after_at_once_and_probes_are_exempt() -> None:
    app = HeldApp()
    limited = InFlightLimit(app, limit=3, retry_after_seconds=1)
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        held = [asyncio.create_task(client.post("/v1/events", content=b"{}")) for _ in range(3)]
        await await_until(lambda: _now(app.entered == 3), within=5, what="3 requests in flight", interval=0.001)
        async with asyncio.timeout(1):  # "at once": no waiting for a slot
            shed = await client.post("/v1/events", content=b"x" * 100_000)
        assert shed.status_code == 503 and shed.headers["Retry-After"] == "1"
        assert shed.json()["error"]["code"] == "overloaded"
        assert app.entered == 3  # never reached the app
        probe = asyncio.create_task(client.get("/readyz"))
        await await_until(lambda: _now(app.entered == 4), within=5, what="the probe let in", interval=0.001)
        app.release.set()
        assert [r.status_code for r in await asyncio.gather(*held, probe)] == [202] * 4
        assert limited.in_flight == 0
        assert (await client.post("/v1/events", content=b"{}")).status_code == 202


def test_every_retry_after_fits_in_the_keep_alive() -> None:
    s = IngestSettings()
    longest = max(s.unavailable_retry_after_seconds, s.shed_retry_after_seconds, s.max_retry_after_seconds)
    assert s.http_keep_alive_seconds >= longest + KEEP_ALIVE_MARGIN_SECONDS
    with pytest.raises(ValidationError, match="http_keep_alive_seconds"):
        IngestSettings(http_keep_alive_seconds=5)
    with pytest.raises(ValidationError, match="unavailable_retry_after_seconds"):
        IngestSettings(unavailable_retry_after_seconds=30)


def test_retry_after_follows_the_overload_and_falls_back_when_it_ends() -> None:
    policy = RetryAfterPolicy(minimum=1, maximum=10, window=2.0, rng=random.Random(1))
    assert policy.shed_one(0.0) == 1
    for i in range(199):
        policy.shed_one(0.01 * i)
    for _ in range(90):
        policy.admitted_one(1.0)
    policy.shed_one(2.0)  # 200 told to wait 1 s in 2 s: 100 waiting; 45 admitted/s: spread over ceil(200 / 45) s
    assert policy.ceiling == 5
    waits = {policy.shed_one(2.5) for _ in range(200)}
    assert waits == {1, 2, 3, 4, 5}
    policy.admitted_one(4.5)  # a window with nothing shed
    assert policy.shed_one(7.0) == 1 and policy.ceiling == 1


@pytest.mark.parametrize(("waiting", "ceiling"), [(20, 1), (200, 9), (400, 10), (1000, 10)])
def test_retry_after_settles_where_waiting_clients_return_about_as_fast_as_requests_are_admitted(
    waiting: int, ceiling: int
) -> None:
    """``waiting`` clients each retrying after the Retry-After they were given, 45 admitted/s: the ceiling settles
    at 2 x waiting / 45 (capped at 10 s), where refusals come at about the admitted rate (~1,000/s with a fixed
    1 s for 1,000 clients; ~180/s at the cap)."""
    policy = RetryAfterPolicy(minimum=1, maximum=10, window=2.0, rng=random.Random(3))
    now = 0.0
    for _ in range(20):  # windows of 2 s
        shed_per_second = waiting / ((1 + policy.ceiling) / 2)  # each client back after its wait, on average
        for i in range(int(shed_per_second * 2)):
            policy.shed_one(now + i / shed_per_second)
        for _ in range(90):
            policy.admitted_one(now + 1.0)
        now += 2.0
    policy.admitted_one(now)
    assert abs(policy.ceiling - ceiling) <= 1, policy.ceiling  # the draws are random: within a second of it
