"""The alerter's batch step: validate each signal once, drop those already seen, hand each to the core.

A signal whose event time is older than the notify max age (a backfill), or whose rule's backtested lift is
below the floor, takes the same path; its notices are recorded as historic or quiet instead of queued for
sending (notice_mode.py). The rules are in core.py; the SQL in store.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter import store
from services.alerter.changes import NoticeRouting, SignalArrived
from services.alerter.core import decide_change
from services.alerter.grouping import GroupTiming
from services.alerter.notice_mode import DeliveryPolicy
from services.alerter.routing import Addresses, RoutingRules
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
        timing: GroupTiming | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self._routing = NoticeRouting(rules, addresses, delivery or DeliveryPolicy())
        self._timing = timing or GroupTiming()
        self._wake = wake_delivery
        self._clock = clock  # notifications are real time: the wall clock decides reminders, not event time

    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        rejected: list[Rejected] = []
        signals: list[RiskSignal] = []
        for r in records:
            try:
                signals.append(RiskSignal.model_validate_json(r.value or b""))  # the one validation
            except ValidationError as exc:
                rejected.append(Rejected(r, f"invalid signal: {exc.errors()[:3]}"))
        fresh = await store.first_sightings(session, [s.signal_id for s in signals])
        for signal in signals:
            if signal.signal_id in fresh:
                fresh.discard(signal.signal_id)  # a copy later in the same batch is a duplicate too
                SIGNALS.labels("new").inc()
                await self._apply(session, signal)
            else:
                SIGNALS.labels("duplicate").inc()
        return rejected

    async def _apply(self, session: AsyncSession, signal: RiskSignal) -> None:
        now = self._clock()
        account = await store.account_alerts(session, signal.account_id)
        effects = decide_change(SignalArrived(signal), account, self._routing, now)
        await store.apply_effects(session, effects, now, self._timing)

    async def after_commit(self) -> None:
        self._wake.set()

    async def on_idle(self) -> None:
        return None

    def on_partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        return None
