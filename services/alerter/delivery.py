"""Delivery workers: take due rows from the outbox one message at a time, send, record the outcome.

A message is one row, or the due rows of one account and destination together (grouping.py): one Slack
message or email with every reason, each row still marked on its own. Its rows are locked (FOR UPDATE SKIP
LOCKED) for the length of the send and marked in the same transaction, so two workers never send the same
row. The one duplicate edge: a crash (kill -9, power loss, lost PostgreSQL
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
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter import store
from services.alerter.compose import NoticeComposer
from services.alerter.delivery_delay import delivery_delay
from services.alerter.grouping import MAX_GROUP
from services.alerter.notifiers import Notifier
from services.alerter.outage import OutageLog
from services.alerter.outgoing import DeliveryError, RetryPolicy
from services.alerter.pacing import TargetPacer
from services.alerter.routing import Channel
from shared.clock import Clock, wall_clock

log = logging.getLogger(__name__)

DELIVERIES = Counter("churnwatch_alerter_deliveries_total", "Delivery attempts", ["channel", "outcome"])
LATENCY = Histogram(
    "churnwatch_alerter_delivery_latency_seconds",
    "From outbox row committed to delivered",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
# 0.5 s to a day; 300 s is a bound because ChurnwatchAlertDeliveriesSlow fires on a p95 above it
DELAY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400)
EVENT_TO_DELIVERY = Histogram(
    "churnwatch_alerter_event_to_delivery_seconds",
    "From the event time of the signal that caused a notice to the notice sent (reminders and digests not counted)",
    ["channel"],
    buckets=DELAY_BUCKETS,
)
SIGNAL_TO_DELIVERY = Histogram(
    "churnwatch_alerter_signal_to_delivery_seconds",
    "From the alerter receiving a signal to the notice it caused sent (reminders and digests not counted)",
    ["channel"],
    buckets=DELAY_BUCKETS,
)


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
        outage: OutageLog | None = None,
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
        self._outage = outage or OutageLog(log)
        self._next_due_at: datetime | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for i in range(self._concurrency):
                group.create_task(self._loop(stop), name=f"delivery-{i}")

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent_any = await self.deliver_one()
                self._outage.succeeded(time.monotonic())
            except Exception as exc:
                self._outage.failed("delivery step", exc, time.monotonic())
                sent_any = False
            if not sent_any:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait())

    def _idle_wait(self) -> float:
        """Until a held target frees up (a paced row may be waiting for it) or the next row falls due (a group
        waiting out its group_wait), at most the idle poll."""
        waits = [self._idle_poll, self._pacer.next_free_in(time.monotonic())]
        due_in = (self._next_due_at - self._clock()).total_seconds() if self._next_due_at else None
        if due_in is not None and due_in > 0:  # one due already waits for its target: the pacer says when
            waits.append(due_in)
        return max(0.005, min(w for w in waits if w is not None))

    async def deliver_one(self) -> bool:
        """Send the oldest due message (one row, or an account's group) whose target is free; False when none."""
        async with self._sessions() as session, session.begin():
            async with self._picking:
                rows = await store.next_due(session, self._pacer.held(time.monotonic()), MAX_GROUP)
                if not rows:
                    self._next_due_at = await store.next_due_at(session)
                    return False
                interval = self._min_interval.get(Channel(rows[0].channel), 0.0)
                self._pacer.reserve(rows[0].target, time.monotonic(), interval)
            values = await self._attempt(rows)
            await store.record_attempt(session, [r.id for r in rows], values)
            return True

    async def _attempt(self, rows: Sequence[Any]) -> dict[str, Any]:
        first = rows[0]
        channel = Channel(first.channel)
        try:
            out = self._composer.outgoing(rows, self._clock())
            await self._notifiers[channel].send(out)
        except DeliveryError as exc:
            values = self._policy.outcome(first.attempts + 1, exc, self._clock(), self._rng, first.created_at)
            if exc.retry_after:
                self._pacer.hold_until(first.target, time.monotonic() + exc.retry_after)
            DELIVERIES.labels(channel.value, "dead" if values["status"] == "dead" else "retry").inc(len(rows))
            ids = ",".join(str(r.id) for r in rows)
            log.warning("delivery %s via %s failed (%s): %s", ids, channel, values["status"], exc)
            return values
        except Exception as exc:  # a row we cannot even build (bad payload): dead, visible in the API
            DELIVERIES.labels(channel.value, "dead").inc(len(rows))
            log.exception("delivery %s cannot be built", first.id)
            return {"status": "dead", "last_error": f"{type(exc).__name__}: {exc}"}
        now = self._clock()
        DELIVERIES.labels(channel.value, "sent").inc(len(rows))
        observe_sent(channel, rows, now)
        return {"status": "sent", "sent_at": now, "last_error": None}


def observe_sent(channel: Channel, rows: Sequence[Any], sent_at: datetime) -> None:
    """The delay metrics of one message's rows, sent at ``sent_at``."""
    for r in rows:
        LATENCY.labels(channel.value).observe(max(0.0, (sent_at - r.created_at).total_seconds()))
        delay = delivery_delay(r, sent_at)
        if delay is None:
            continue
        if delay.since_event is not None:
            EVENT_TO_DELIVERY.labels(channel.value).observe(delay.since_event)
        if delay.since_received is not None:
            SIGNAL_TO_DELIVERY.labels(channel.value).observe(delay.since_received)
