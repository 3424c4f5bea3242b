"""The alerter's batch step: drop signals already seen, update alerts, queue deliveries in the outbox.

A signal whose event time is older than the notify max age (a backfill), or whose rule's backtested lift is
below the floor, runs through the same steps; its notices are recorded as historic or quiet instead of
queued for sending (notice_mode.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.inhibition import NoticeRouting, existing_from, hold_back, release_held, stops_inhibiting
from services.alerter.lifecycle import ExistingAlert, decide
from services.alerter.notice_mode import DeliveryPolicy
from services.alerter.outbox import alert_columns, queue_notice, upsert_alert
from services.alerter.routing import Addresses, RoutingRules
from services.alerter.tables import alerts, processed_signals
from shared.clock import Clock, wall_clock
from shared.consumer_loop import Rejected
from shared.signals import RiskSignal

SIGNALS = Counter("churnwatch_alerter_signals_total", "Signals consumed", ["outcome"])


class AlertingProcessor:
    def __init__(
        self,
        *,
        rules: RoutingRules,
        addresses: Addresses,
        wake_delivery: asyncio.Event,
        delivery: DeliveryPolicy | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self._routing = NoticeRouting(rules, addresses, delivery or DeliveryPolicy())
        self._wake = wake_delivery
        self._clock = clock  # notifications are real time: the wall clock decides reminders, not event time

    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        rejected: list[Rejected] = []
        signals: list[RiskSignal] = []
        for r in records:
            try:
                signals.append(RiskSignal.model_validate_json(r.value or b""))
            except ValidationError as exc:
                rejected.append(Rejected(r, f"invalid signal: {exc.errors()[:3]}"))
        fresh = await self._first_sightings(session, [s.signal_id for s in signals])
        for signal in signals:
            if signal.signal_id in fresh:
                fresh.discard(signal.signal_id)  # a copy later in the same batch is a duplicate too
                SIGNALS.labels("new").inc()
                await self._apply(session, signal)
            else:
                SIGNALS.labels("duplicate").inc()
        return rejected

    async def _first_sightings(self, session: AsyncSession, signal_ids: list[str]) -> set[str]:
        """The ids never processed before, recorded as processed now: one statement per batch."""
        if not signal_ids:
            return set()
        stmt = (
            insert(processed_signals)
            .values([{"signal_id": i} for i in dict.fromkeys(signal_ids)])
            .on_conflict_do_nothing()
            .returning(processed_signals.c.signal_id)
        )
        return set((await session.execute(stmt)).scalars())

    async def _current(self, session: AsyncSession, signal: RiskSignal) -> ExistingAlert | None:
        row = (
            await session.execute(
                select(alerts)
                .where(alerts.c.account_id == signal.account_id, alerts.c.signal_type == signal.signal_type.value)
                .with_for_update()
            )
        ).first()
        return existing_from(row) if row else None

    async def _apply(self, session: AsyncSession, signal: RiskSignal) -> None:
        existing = await self._current(session, signal)
        now = self._clock()
        decision = decide(existing, signal, self._routing.delivery.for_risk_signal(signal, now))
        if decision is None:
            return
        decision = await hold_back(
            session,
            decision,
            account_id=signal.account_id,
            signal_type=signal.signal_type.value,
            held_before=existing.held if existing else None,
            policy=self._routing.policy,
        )
        payload = signal.model_dump(mode="json")
        alert_id = await upsert_alert(
            session,
            account_id=signal.account_id,
            signal_type=signal.signal_type.value,
            signal=payload,
            cols=alert_columns(decision, now),
        )
        if decision.notice is not None:
            await queue_notice(
                session,
                alert_id=alert_id,
                cause=signal.signal_id,
                notice=decision.notice,
                signal=payload,
                destinations=self._routing.destinations(payload),
                mode=decision.mode,
            )
        if stops_inhibiting(existing, decision):
            await release_held(
                session, source_id=alert_id, account_id=signal.account_id, now=now, routing=self._routing
            )

    async def after_commit(self) -> None:
        self._wake.set()

    async def on_idle(self) -> None:
        return None

    def on_partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        return None
