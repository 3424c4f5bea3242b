"""Whether the broker is worth waiting for: once a send failed or timed out (or a probe found no broker), requests
are answered 503 at once instead of each waiting the produce timeout (~10 s each, piling up in clients); a
background probe (a metadata request every ``probe_seconds``) notices the broker is back, with no restart.

``BrokerHealth`` is the decision (time passed in by the clock); ``watch_broker`` is the probe loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge

from shared.state_log import StateLog

log = logging.getLogger(__name__)

BROKER_UP = Gauge("churnwatch_ingest_broker_up", "1 while ingest believes Kafka takes writes (0: answering 503)")


class BrokerHealth:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.up = True
        self.last_ack_at = clock()
        self.state_log = StateLog(log, "Kafka (ingest's producer)", clock=clock)
        BROKER_UP.set(1)

    def acknowledged(self) -> None:
        self.last_ack_at = self._clock()
        if not self.up:
            self._recovered()

    def failed(self, reason: str) -> None:
        self.state_log.failing(f"{reason}; answering 503 at once until a probe reaches the broker")
        if self.up:
            self.up = False
            BROKER_UP.set(0)

    def probed(self, reachable: bool) -> None:
        if reachable:
            if not self.up:
                self._recovered()
        else:
            self.failed("metadata probe failed")

    def needs_probe(self, interval: float) -> bool:
        """Probe while down, and while no write was acknowledged for ``interval`` (idle, or stuck)."""
        return not self.up or self._clock() - self.last_ack_at >= interval

    def _recovered(self) -> None:
        self.up = True
        BROKER_UP.set(1)
        self.state_log.healthy()


async def watch_broker(
    health: BrokerHealth, probe: Callable[[], Awaitable[bool]], interval: float, stop: asyncio.Event
) -> None:
    """Runs until ``stop``: every ``interval``, probes the broker when ``health`` says it should."""
    while not stop.is_set():
        if health.needs_probe(interval):
            try:
                reachable = bool(await asyncio.wait_for(probe(), max(interval * 2, 2.0)))
            except Exception:  # a probe that cannot answer is a broker that cannot take writes
                reachable = False
            health.probed(reachable)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
