"""Shedding load early and cheaply: at most ``limit`` requests in flight; past it, 503 + Retry-After at once,
before the body is read, the key is checked or anything is logged.

Why: with ~1,000 requests admitted at once every one of them waited its turn for the same two cores, so each
took 10-41 s and throughput fell (~70 requests/s against ~107 at the peak); a per-key rate limit acts only after a
request is admitted, when its cost is already paid. A bounded number in flight keeps the server at its peak rate
and tells the rest of the clients, at the cost of a header parse, to come back a second later.

A shed request still costs a little (its headers and body cross the HTTP parser), so with 1,000 clients told
"1 s" ingest spent its cores refusing ~1,000 requests/s. Retry-After therefore follows the overload
(``RetryAfterPolicy``): about as many waiting clients come back per second as requests are admitted.

A pure ASGI middleware (no request object is built for a shed request). The probes and /metrics are exempt, so an
overloaded instance still reports itself alive and ready and is still scraped.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.state_log import StateLog

log = logging.getLogger(__name__)

SHED = Counter("churnwatch_ingest_shed_total", "Requests refused with 503 because too many were in flight")
IN_FLIGHT = Gauge("churnwatch_ingest_requests_in_flight", "Requests being served now (probes and /metrics not)")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_BODY = json.dumps(
    {
        "error": {
            "code": "overloaded",
            "message": "too many requests in flight; nothing was accepted, retry after Retry-After seconds",
            "fields": [],
            "accepted": 0,
        }
    }
).encode()


@dataclass
class RetryAfterPolicy:
    """Retry-After for shed requests: a whole number of seconds drawn evenly from ``minimum..ceiling``, the
    ceiling recomputed every ``window`` seconds between ``minimum`` and ``maximum``.

    Drawn, not fixed: clients refused in the same instant (a burst) must not all come back in the same instant
    again. The ceiling: the clients waiting to retry are about ``sum of the Retry-Afters given / window``
    (Little's law on the waiting room); spreading their return over ``2 x waiting / admitted rate`` seconds brings
    them back about as fast as requests are admitted, so the shed rate settles near the admitted rate whatever
    the offered load. Pure apart from the random draw (seedable); time passed in."""

    minimum: int
    maximum: int
    window: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    ceiling: int = 0
    window_start: float = 0.0
    shed: int = 0
    told_to_wait: int = 0  # seconds, summed over this window's shed requests
    admitted: int = 0

    def __post_init__(self) -> None:
        self.ceiling = self.ceiling or self.minimum

    def admitted_one(self, now: float) -> None:
        self._roll(now)
        self.admitted += 1

    def shed_one(self, now: float) -> int:
        self._roll(now)
        wait = self.rng.randint(self.minimum, self.ceiling)
        self.shed += 1
        self.told_to_wait += wait
        return wait

    def _roll(self, now: float) -> None:
        elapsed = now - self.window_start
        if elapsed < self.window:
            return
        if self.shed == 0:
            self.ceiling = self.minimum
        else:
            waiting = self.told_to_wait / elapsed
            admitted_rate = max(self.admitted, 1) / elapsed
            self.ceiling = max(self.minimum, min(self.maximum, math.ceil(2 * waiting / admitted_rate)))
        self.window_start, self.shed, self.told_to_wait, self.admitted = now, 0, 0, 0


class InFlightLimit:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        retry_after_seconds: int,
        max_retry_after_seconds: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.retry_after = RetryAfterPolicy(retry_after_seconds, max_retry_after_seconds or retry_after_seconds)
        self._clock = clock
        self._headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]
        # one line when shedding starts, a reminder a minute, one when it has not shed for 10 s
        self.state_log = StateLog(log, f"ingest capacity ({limit} requests in flight)", settle_seconds=10.0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            SHED.inc()
            retry_after = self.retry_after.shed_one(self._clock())
            self.state_log.failing("shedding requests with 503 + Retry-After")
            headers = [*self._headers, (b"retry-after", str(retry_after).encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.in_flight += 1
        self.retry_after.admitted_one(self._clock())
        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            IN_FLIGHT.dec()
            self.state_log.healthy()
