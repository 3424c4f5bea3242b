"""The alerter's batch step: drop signals already seen, update alerts, queue deliveries in the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.lifecycle import AlertState, ExistingAlert, decide
from services.alerter.routing import RoutingDefaults, route_signal
from services.alerter.tables import alerts, deliveries, processed_signals
from shared.consumer_loop import Rejected
from shared.signals import RiskSignal, Severity

ALERTS = Counter("churnwatch_alerter_alerts_total", "Alert notices created", ["signal_type", "notice", "route"])
SIGNALS = Counter("churnwatch_alerter_signals_total", "Signals consumed", ["outcome"])


class AlertingProcessor:
    def __init__(self, *, routing: RoutingDefaults, wake_delivery: asyncio.Event) -> None:
        self._routing = routing
        self._wake = wake_delivery

    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        rejected: list[Rejected] = []
        signals: list[RiskSignal] = []
        for r in records:
            try:
                signals.append(RiskSignal.model_validate_json(r.value or b""))
            except ValidationError as exc:
                rejected.append(Rejected(r, f"invalid signal: {exc.errors()[:3]}"))
        for signal in signals:
            if await self._first_sighting(session, signal.signal_id):
                SIGNALS.labels("new").inc()
                await self._apply(session, signal)
            else:
                SIGNALS.labels("duplicate").inc()
        return rejected

    async def _first_sighting(self, session: AsyncSession, signal_id: str) -> bool:
        stmt = (
            insert(processed_signals)
            .values(signal_id=signal_id)
            .on_conflict_do_nothing()
            .returning(processed_signals.c.signal_id)
        )
        return (await session.execute(stmt)).first() is not None

    async def _apply(self, session: AsyncSession, signal: RiskSignal) -> None:
        row = (
            await session.execute(
                select(alerts.c.id, alerts.c.state, alerts.c.severity)
                .where(alerts.c.account_id == signal.account_id, alerts.c.signal_type == signal.signal_type.value)
                .with_for_update()
            )
        ).first()
        existing = ExistingAlert(AlertState(row.state), Severity(row.severity)) if row else None
        decision = decide(existing, signal)
        if decision is None:
            return
        payload = signal.model_dump(mode="json")
        values: dict[str, Any] = {
            "account_id": signal.account_id,
            "signal_type": signal.signal_type.value,
            "state": decision.state.value,
            "severity": decision.severity.value,
            "last_signal": payload,
        }
        stmt = insert(alerts).values(values)
        alert_id = (
            await session.execute(
                stmt.on_conflict_do_update(
                    constraint="alerts_account_type",
                    set_={
                        **{k: stmt.excluded[k] for k in ("state", "severity", "last_signal")},
                        "updated_at": stmt.excluded.updated_at,
                    },
                ).returning(alerts.c.id)
            )
        ).scalar_one()
        if decision.notice is None:
            return
        rows = [
            {
                "alert_id": alert_id,
                "signal_id": signal.signal_id,
                "notice": decision.notice.value,
                "channel": d.channel.value,
                "target": d.target,
                "route": d.route,
                "payload": payload,
            }
            for d in route_signal(signal, self._routing)
        ]
        for d in rows:
            ALERTS.labels(signal.signal_type.value, decision.notice.value, d["route"]).inc()
        if rows:
            await session.execute(insert(deliveries).values(rows).on_conflict_do_nothing())

    async def after_commit(self) -> None:
        self._wake.set()

    async def on_idle(self) -> None:
        return None

    def on_partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        return None
