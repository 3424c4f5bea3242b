"""Delivery workers: take due rows from the outbox one at a time, send, record the outcome.

A row is locked (FOR UPDATE SKIP LOCKED) for the length of its send and marked in the same transaction, so
two workers never send the same row. The one duplicate edge: a crash (kill -9, power loss, lost PostgreSQL
connection) after the destination accepted the message and before the commit that marks it sent; the row
is then sent again on restart. The window is one send long and covers at most one row per concurrent
worker. Email resends carry the same Message-ID and JSON-webhook resends the same X-Churnwatch-Delivery, so
receivers can drop them; Slack has no such key.

Sends are paced per target (pacing.py): the workers of one process start at most one send per
``min_interval`` to one Slack webhook, so a burst does not meet Slack's 429. A 429 still happens if other
processes post to the same webhook; its Retry-After then holds every row for that target in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.compose import NoticeComposer
from services.alerter.notifiers import DeliveryError, Notifier
from services.alerter.pacing import TargetPacer
from services.alerter.routing import Channel
from services.alerter.tables import deliveries
from shared.clock import Clock, wall_clock

log = logging.getLogger(__name__)

DELIVERIES = Counter("churnwatch_alerter_deliveries_total", "Delivery attempts", ["channel", "outcome"])
LATENCY = Histogram(
    "churnwatch_alerter_delivery_latency_seconds",
    "From outbox row committed to delivered",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Exponential backoff with full jitter; a server's Retry-After is a floor."""
        backoff = rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))
        return max(backoff, retry_after or 0.0)

    def outcome(self, attempts: int, exc: DeliveryError, now: datetime, rng: random.Random) -> dict[str, Any]:
        """The row's columns after a failed attempt: pending again later, or dead. Pure given ``rng``."""
        error = str(exc)[:1000]
        if not exc.retryable or attempts >= self.max_attempts:
            return {"status": "dead", "attempts": attempts, "last_error": error}
        delay = self.delay(attempts, exc.retry_after, rng)
        return {
            "status": "pending",
            "attempts": attempts,
            "last_error": error,
            "next_attempt_at": now + timedelta(seconds=delay),
        }


class DeliveryWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        notifiers: dict[Channel, Notifier],
        composer: NoticeComposer,
        policy: RetryPolicy,
        wake: asyncio.Event,
        concurrency: int = 2,
        idle_poll_seconds: float = 1.0,
        min_interval: Mapping[Channel, float] | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self._sessions = sessions
        self._notifiers = notifiers
        self._composer = composer
        self._policy = policy
        self._wake = wake
        self._concurrency = concurrency
        self._idle_poll = idle_poll_seconds
        self._clock = clock
        self._rng = random.Random()
        self._min_interval = dict(min_interval or {})  # per channel, e.g. Slack: 1 s per webhook
        self._pacer = TargetPacer()
        self._picking = asyncio.Lock()  # choose a row and reserve its target's slot as one step

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for i in range(self._concurrency):
                group.create_task(self._loop(stop), name=f"delivery-{i}")

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent_any = await self.deliver_one()
            except Exception:
                log.exception("delivery step failed; retrying")
                sent_any = False
            if not sent_any:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait())

    def _idle_wait(self) -> float:
        """Until a held target frees up (a paced row may be waiting for it), at most the idle poll."""
        free_in = self._pacer.next_free_in(time.monotonic())
        return self._idle_poll if free_in is None else max(0.005, min(self._idle_poll, free_in))

    async def deliver_one(self) -> bool:
        """Send the oldest due delivery whose target is free; False when none is."""
        query = (
            select(deliveries)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= func.now())
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        async with self._sessions() as session, session.begin():
            async with self._picking:
                if held := self._pacer.held(time.monotonic()):
                    query = query.where(deliveries.c.target.not_in(held))
                row = (await session.execute(query)).first()
                if row is None:
                    return False
                interval = self._min_interval.get(Channel(row.channel), 0.0)
                self._pacer.reserve(row.target, time.monotonic(), interval)
            values = await self._attempt(row)
            await session.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
            return True

    async def _attempt(self, row: Any) -> dict[str, Any]:
        channel = Channel(row.channel)
        try:
            out = self._composer.outgoing(row, self._clock())
            await self._notifiers[channel].send(out)
        except DeliveryError as exc:
            values = self._policy.outcome(row.attempts + 1, exc, self._clock(), self._rng)
            if exc.retry_after:
                self._pacer.hold_until(row.target, time.monotonic() + exc.retry_after)
            DELIVERIES.labels(channel.value, "dead" if values["status"] == "dead" else "retry").inc()
            log.warning("delivery %s via %s failed (%s): %s", row.id, channel, values["status"], exc)
            return values
        except Exception as exc:  # a row we cannot even build (bad payload): dead, visible in the API
            DELIVERIES.labels(channel.value, "dead").inc()
            log.exception("delivery %s cannot be built", row.id)
            return {"status": "dead", "attempts": row.attempts + 1, "last_error": f"{type(exc).__name__}: {exc}"}
        now = self._clock()
        DELIVERIES.labels(channel.value, "sent").inc()
        LATENCY.labels(channel.value).observe(max(0.0, (now - row.created_at).total_seconds()))
        return {"status": "sent", "attempts": row.attempts + 1, "sent_at": now, "last_error": None}
