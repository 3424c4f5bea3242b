"""The reminder and digest scheduler: reminders for unacknowledged alerts, expired snoozes, tech-touch digests,
stale holds, outbox gauges. (Not a clock: the wall clock is shared/clock.py, event time is the scorer's.)

Each tick is a few cheap queries; every alert change goes through core.decide_change with the wall clock
passed in (notifications are real time) and is written by store.apply_effects, each alert in its own short
transaction with its account's alerts locked, so two alerter instances can tick at once without double
reminders (the second sees the first's change and the core finds nothing due) or double digests.

Nothing here pages anyone about an alert nobody was told about: an alert whose latest notice was historic
or quiet gets no reminder, and its expired snooze reopens it silently; quiet, historic and shadow digest
items go into a digest row recorded with that status, never sent (notice_mode.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter import store
from services.alerter.changes import Change, HoldEnded, NoticeRouting, TimerFired, UnknownAlert
from services.alerter.compose import DIGEST
from services.alerter.core import decide_change
from services.alerter.grouping import GroupTiming
from services.alerter.lifecycle import digest_due, digest_window
from services.alerter.notice_mode import DeliveryPolicy, NoticeMode
from services.alerter.outage import OutageLog
from services.alerter.routing import Addresses, RoutingRules
from shared.clock import Clock, wall_clock

log = logging.getLogger(__name__)

OUTBOX_DEPTH = Gauge("churnwatch_alerter_outbox_depth", "Deliveries waiting to be sent")
OLDEST_PENDING = Gauge("churnwatch_alerter_outbox_oldest_age_seconds", "Age of the oldest undelivered delivery")
DEAD = Gauge("churnwatch_alerter_deliveries_dead", "Deliveries that gave up (dead-lettered), visible in the API")
DIGEST_WAITING = Gauge("churnwatch_alerter_digest_items_waiting", "Notices waiting for their digest email")
# the metric keeps its first name (dashboards and alert rules read it): it counts the scheduler's ticks
TICKS = Counter("churnwatch_alerter_clock_ticks_total", "Reminder/digest scheduler ticks completed")


@dataclass(frozen=True)
class Timers:
    repeat_interval: timedelta | None  # None: never remind
    digest_interval: timedelta
    digest_offset: timedelta
    tick: timedelta


class AlertScheduler:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        rules: RoutingRules,
        addresses: Addresses,
        timers: Timers,
        wake_delivery: asyncio.Event,
        delivery: DeliveryPolicy | None = None,
        timing: GroupTiming | None = None,
        clock: Clock = wall_clock,
        outage: OutageLog | None = None,
    ) -> None:
        self._sessions = sessions
        self._routing = NoticeRouting(rules, addresses, delivery or DeliveryPolicy())
        self._timers = timers
        self._timing = timing or GroupTiming()
        self._wake = wake_delivery
        self._clock = clock
        self._outage = outage or OutageLog(log)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick(self._clock())
                self._outage.succeeded(time.monotonic())
            except Exception as exc:
                self._outage.failed("scheduler tick", exc, time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._timers.tick.total_seconds())

    async def tick(self, now: datetime) -> None:
        queued = await self._remind(now) + await self._digest(now) + await self._release_stale(now)
        if queued:
            self._wake.set()
        await self._refresh_gauges(now)
        TICKS.inc()

    async def _remind(self, now: datetime) -> int:
        async with self._sessions() as session:
            due = await store.due_alerts(session, now, self._timers.repeat_interval)
        repeat = self._timers.repeat_interval
        return sum([await self._change(account, TimerFired(i, repeat), now) for i, account in due])

    async def _release_stale(self, now: datetime) -> int:
        async with self._sessions() as session:
            stale = await store.stale_holds(session)
        return sum([await self._change(account, HoldEnded(source), now) for source, account in stale])

    async def _change(self, account_id: str, change: Change, now: datetime) -> int:
        """One change to one account's alerts, in its own transaction; the live notices it queued."""
        async with self._sessions() as session, session.begin():
            alerts = await store.account_alerts(session, account_id)
            try:
                effects = decide_change(change, alerts, self._routing, now)
            except UnknownAlert:
                return 0  # gone since the query (another instance, or a reset): nothing to do
            return await store.apply_effects(session, effects, now, self._timing)

    async def _digest(self, now: datetime) -> int:
        t = self._timers
        async with self._sessions() as session:
            waiting = await store.waiting_digests(session)
        count = 0
        for target, mode, oldest in waiting:
            if digest_due(oldest, now, t.digest_interval, t.digest_offset):
                count += await self._send_digest(target, mode, now)
        return count

    async def _send_digest(self, target: str, mode: NoticeMode, now: datetime) -> int:
        t = self._timers
        window = digest_window(now, t.digest_interval, t.digest_offset)
        start = datetime.fromtimestamp(
            window * t.digest_interval.total_seconds() + t.digest_offset.total_seconds(), UTC
        )
        cause = f"digest:{hashlib.sha256(target.encode()).hexdigest()[:24]}:{window}"
        if mode is not NoticeMode.LIVE:
            cause += f":{mode.value}"  # beside the live digest of the same period, not instead of it
        digest = store.DigestRow(cause, f"up to {start.isoformat()}", DIGEST)
        async with self._sessions() as session, session.begin():
            return await store.collect_digest(session, target, mode, digest)

    async def _refresh_gauges(self, now: datetime) -> None:
        async with self._sessions() as session:
            figures = await store.outbox_figures(session)
        OUTBOX_DEPTH.set(figures.pending)
        oldest = figures.oldest_pending_at
        OLDEST_PENDING.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        DEAD.set(figures.dead)
        DIGEST_WAITING.set(figures.digest_waiting)
