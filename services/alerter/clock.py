"""The alerter's timer: reminders for unacknowledged alerts, expired snoozes, tech-touch digests, outbox gauges.

Each tick is a few cheap queries; the decisions are the pure functions in lifecycle.py, with the wall clock
passed in (notifications are real time). Rows are locked with SKIP LOCKED, so two alerter instances can tick
at once without double reminders or double digests.

Nothing here pages anyone about an alert nobody was told about: an alert whose latest notice was historic
or quiet gets no reminder, and its expired snooze reopens it silently; quiet, historic and shadow digest
items go into a digest row recorded with that status, never sent (notice_mode.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.compose import DIGEST
from services.alerter.inhibition import NoticeRouting, existing_from, hold_back, release_held
from services.alerter.lifecycle import AlertState, digest_due, digest_window, on_timer
from services.alerter.notice_mode import DeliveryPolicy, NoticeMode
from services.alerter.outbox import alert_columns, queue_notice, update_alert
from services.alerter.routing import Addresses, Channel, RoutingRules
from services.alerter.tables import alerts, deliveries, digest_items
from shared.clock import Clock, wall_clock
from shared.signals import Severity

log = logging.getLogger(__name__)

OUTBOX_DEPTH = Gauge("churnwatch_alerter_outbox_depth", "Deliveries waiting to be sent")
OLDEST_PENDING = Gauge("churnwatch_alerter_outbox_oldest_age_seconds", "Age of the oldest undelivered delivery")
DEAD = Gauge("churnwatch_alerter_deliveries_dead", "Deliveries that gave up (dead-lettered), visible in the API")
DIGEST_WAITING = Gauge("churnwatch_alerter_digest_items_waiting", "Notices waiting for their digest email")
TICKS = Counter("churnwatch_alerter_clock_ticks_total", "Alert clock ticks completed")


@dataclass(frozen=True)
class Timers:
    repeat_interval: timedelta | None  # None: never remind
    digest_interval: timedelta
    digest_offset: timedelta
    tick: timedelta


class AlertClock:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        rules: RoutingRules,
        addresses: Addresses,
        timers: Timers,
        wake_delivery: asyncio.Event,
        delivery: DeliveryPolicy | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self._sessions = sessions
        self._routing = NoticeRouting(rules, addresses, delivery or DeliveryPolicy())
        self._timers = timers
        self._wake = wake_delivery
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick(self._clock())
            except Exception:
                log.exception("alert clock tick failed; trying again next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._timers.tick.total_seconds())

    async def tick(self, now: datetime) -> None:
        queued = await self._remind(now) + await self._digest(now) + await self._release_stale(now)
        if queued:
            self._wake.set()
        await self._refresh_gauges(now)
        TICKS.inc()

    async def _remind(self, now: datetime) -> int:
        t = self._timers
        conditions = [(alerts.c.state == AlertState.SNOOZED.value) & (alerts.c.snoozed_until <= now)]
        if t.repeat_interval is not None:
            stale = alerts.c.last_notified_at <= now - t.repeat_interval
            # historic and quiet alerts get none; left in the query they would crowd out the live ones
            told = alerts.c.notice_mode.in_([m.value for m in NoticeMode if m.would_be_sent])
            conditions.append((alerts.c.state == AlertState.OPEN.value) & stale & told)
        query = (
            select(alerts)
            .where(or_(*conditions), alerts.c.inhibited_by.is_(None))  # an inhibited alert waits for its release
            .limit(500)
            .with_for_update(skip_locked=True)
        )
        count = 0
        async with self._sessions() as session, session.begin():
            for row in (await session.execute(query)).all():
                count += await self._remind_one(session, row, now)
        return count

    async def _remind_one(self, session: AsyncSession, row: Any, now: datetime) -> int:
        existing = existing_from(row)
        decision = on_timer(existing, now, self._timers.repeat_interval, self._routing.delivery.own_mode)
        if decision is None:
            return 0
        decision = await hold_back(
            session,
            decision,
            account_id=row.account_id,
            signal_type=row.signal_type,
            held_before=existing.held,
            policy=self._routing.policy,
        )
        cols = alert_columns(decision, now)
        if decision.notice is None:
            await update_alert(session, row.id, cols)
            return 0
        await update_alert(session, row.id, cols | {"reminders_sent": row.reminders_sent + 1})
        await queue_notice(
            session,
            alert_id=row.id,
            cause=f"reminder:{row.id}:{row.reminders_sent + 1}",
            notice=decision.notice,
            signal=row.last_signal,
            destinations=self._routing.destinations(row.last_signal),
            mode=decision.mode,
        )
        return 1

    async def _release_stale(self, now: datetime) -> int:
        """Held alerts whose critical alert no longer inhibits, e.g. resolved while a warning was being held
        in a concurrent transaction; normally the resolve itself releases them."""
        source = alerts.alias("source")
        stale = (
            select(source.c.id, source.c.account_id)
            .join(alerts, alerts.c.inhibited_by == source.c.id)
            .where(
                (source.c.severity != Severity.CRITICAL.value)
                | source.c.state.not_in([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value])
            )
            .distinct()
        )
        count = 0
        async with self._sessions() as session, session.begin():
            for source_id, account_id in (await session.execute(stale)).all():
                count += await release_held(
                    session, source_id=source_id, account_id=account_id, now=now, routing=self._routing
                )
        return count

    async def _digest(self, now: datetime) -> int:
        t = self._timers
        async with self._sessions() as session:
            waiting = (
                await session.execute(
                    select(digest_items.c.target, digest_items.c.mode, func.min(digest_items.c.created_at))
                    .where(digest_items.c.delivery_id.is_(None))
                    .group_by(digest_items.c.target, digest_items.c.mode)
                )
            ).all()
        count = 0
        for target, mode, oldest in waiting:
            if digest_due(oldest, now, t.digest_interval, t.digest_offset):
                count += await self._send_digest(target, NoticeMode(mode), now)
        return count

    async def _send_digest(self, target: str, mode: NoticeMode, now: datetime) -> int:
        t = self._timers
        window = digest_window(now, t.digest_interval, t.digest_offset)
        start = datetime.fromtimestamp(
            window * t.digest_interval.total_seconds() + t.digest_offset.total_seconds(), UTC
        )
        async with self._sessions() as session, session.begin():
            items = (
                await session.execute(
                    select(digest_items)
                    .where(
                        digest_items.c.target == target,
                        digest_items.c.mode == mode.value,
                        digest_items.c.delivery_id.is_(None),
                    )
                    .order_by(digest_items.c.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not items:
                return 0
            payload = {
                "period": f"up to {start.isoformat()}",
                "items": [{"alert_id": i.alert_id, "notice": i.notice, "signal": i.payload} for i in items],
            }
            key = f"digest:{hashlib.sha256(target.encode()).hexdigest()[:24]}:{window}"
            if mode is not NoticeMode.LIVE:
                key += f":{mode.value}"  # beside the live digest of the same period, not instead of it
            row = {
                "signal_id": key,
                "notice": DIGEST,
                "channel": Channel.EMAIL.value,
                "target": target,
                "route": items[0].route,
                "payload": payload,
                "status": mode.outbox_status,
            }
            delivery_id = (
                await session.execute(insert(deliveries).values(row).returning(deliveries.c.id))
            ).scalar_one()
            ids = [i.id for i in items]
            await session.execute(
                update(digest_items).where(digest_items.c.id.in_(ids)).values(delivery_id=delivery_id)
            )
        return 1

    async def _refresh_gauges(self, now: datetime) -> None:
        async with self._sessions() as session:
            pending = (
                await session.execute(
                    select(func.count(), func.min(deliveries.c.created_at)).where(deliveries.c.status == "pending")
                )
            ).one()
            dead = (await session.execute(select(func.count()).where(deliveries.c.status == "dead"))).scalar_one()
            waiting = (
                await session.execute(
                    select(func.count()).where(
                        digest_items.c.delivery_id.is_(None), digest_items.c.mode == NoticeMode.LIVE.value
                    )
                )
            ).scalar_one()
        OUTBOX_DEPTH.set(pending[0])
        OLDEST_PENDING.set(max(0.0, (now - pending[1]).total_seconds()) if pending[1] else 0.0)
        DEAD.set(dead)
        DIGEST_WAITING.set(waiting)
