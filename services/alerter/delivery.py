"""Delivery workers: take due rows from the outbox one at a time, send, record the outcome.

A row is locked (FOR UPDATE SKIP LOCKED) for the length of its send and marked in the same transaction, so
two workers never send the same row. The one duplicate edge: a crash after the destination accepted the
message and before the commit; the row is then sent again on restart. That window is one send long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Histogram
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.lifecycle import Notice
from services.alerter.notifiers import DeliveryError, Notifier
from services.alerter.routing import Channel
from services.alerter.tables import deliveries
from shared.signals import RiskSignal

log = logging.getLogger(__name__)

DELIVERIES = Counter("churnwatch_alerter_deliveries_total", "Delivery attempts", ["channel", "outcome"])
LATENCY = Histogram(
    "churnwatch_alerter_delivery_latency_seconds",
    "From outbox row to delivered",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
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


class DeliveryWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        notifiers: dict[Channel, Notifier],
        policy: RetryPolicy,
        wake: asyncio.Event,
        idle_poll_seconds: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._notifiers = notifiers
        self._policy = policy
        self._wake = wake
        self._idle_poll = idle_poll_seconds
        self._rng = random.Random()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent_any = await self.deliver_one()
            except Exception:
                log.exception("delivery step failed; retrying")
                sent_any = False
            if not sent_any:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def deliver_one(self) -> bool:
        """Send the oldest due delivery; False when none is due."""
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(deliveries)
                    .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= func.now())
                    .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            channel = Channel(row.channel)
            signal = RiskSignal.model_validate(row.payload)
            values: dict[str, object]
            try:
                await self._notifiers[channel].send(row.target, signal, Notice(row.notice))
            except DeliveryError as exc:
                values = self._failure(row.attempts + 1, exc)
                DELIVERIES.labels(channel.value, values["status"]).inc()
                log.warning("delivery %s to %s failed (%s): %s", row.id, channel, values["status"], exc)
            else:
                now = datetime.now(UTC)
                values = {"status": "sent", "attempts": row.attempts + 1, "sent_at": now, "last_error": None}
                DELIVERIES.labels(channel.value, "sent").inc()
                LATENCY.labels(channel.value).observe((now - row.created_at).total_seconds())
            await session.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
            return True

    def _failure(self, attempts: int, exc: DeliveryError) -> dict[str, object]:
        if not exc.retryable or attempts >= self._policy.max_attempts:
            return {"status": "dead", "attempts": attempts, "last_error": str(exc)[:1000]}
        delay = self._policy.delay(attempts, exc.retry_after, self._rng)
        return {
            "status": "pending",
            "attempts": attempts,
            "last_error": str(exc)[:1000],
            "next_attempt_at": datetime.now(UTC) + timedelta(seconds=delay),
        }
