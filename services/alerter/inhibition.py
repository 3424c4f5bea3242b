"""Inhibition at the database edge: look up an account's other alerts, hold a notice back, release held ones.

The rules are the pure functions in lifecycle.py. Everything here runs inside the caller's transaction (the
consumer loop's, the alert clock's or an API request's), after the change that triggers it has been written,
so the siblings it reads already show that change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.lifecycle import (
    AlertState,
    Decision,
    ExistingAlert,
    InhibitPolicy,
    Notice,
    SiblingAlert,
    inhibit,
    inhibitor_of,
    is_inhibitor,
    release,
)
from services.alerter.notice_mode import DeliveryPolicy, NoticeMode
from services.alerter.outbox import queue_notice, update_alert
from services.alerter.routing import Addresses, Destination, RoutingRules, route_signal
from services.alerter.tables import alerts
from shared.signals import RiskSignal, Severity


@dataclass(frozen=True)
class NoticeRouting:
    """Where an alert's notices go, what may hold them back, and whether they are sent or only recorded."""

    rules: RoutingRules
    addresses: Addresses
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    @property
    def policy(self) -> InhibitPolicy:
        return self.rules.inhibit.policy()

    def destinations(self, signal: dict[str, Any]) -> list[Destination]:
        return route_signal(RiskSignal.model_validate(signal), self.rules, self.addresses)


def existing_from(row: Any) -> ExistingAlert:
    """An alerts row as the lifecycle sees it."""
    return ExistingAlert(
        AlertState(row.state),
        Severity(row.severity),
        row.last_notified_at,
        row.snoozed_until,
        Notice(row.held_notice) if row.held_notice else None,
        NoticeMode(row.notice_mode),
    )


def stops_inhibiting(before: ExistingAlert | None, after: Decision) -> bool:
    return (
        before is not None
        and is_inhibitor(before.state, before.severity)
        and not is_inhibitor(after.state, after.severity)
    )


async def siblings(session: AsyncSession, account_id: str) -> list[SiblingAlert]:
    rows = await session.execute(
        select(alerts.c.id, alerts.c.signal_type, alerts.c.state, alerts.c.severity, alerts.c.notice_mode).where(
            alerts.c.account_id == account_id
        )
    )
    return [
        SiblingAlert(r.id, r.signal_type, AlertState(r.state), Severity(r.severity), NoticeMode(r.notice_mode))
        for r in rows
    ]


async def hold_back(
    session: AsyncSession,
    decision: Decision,
    *,
    account_id: str,
    signal_type: str,
    held_before: Notice | None,
    policy: InhibitPolicy,
) -> Decision:
    """The decision, with its notice held back if a critical alert of another type mutes it."""
    if decision.notice is None or not policy.enabled or decision.severity not in policy.targets:
        return decision
    others = await siblings(session, account_id)
    return inhibit(decision, inhibitor_of(signal_type, decision.severity, others, policy, decision.mode), held_before)


async def release_held(
    session: AsyncSession, *, source_id: int, account_id: str, now: datetime, routing: NoticeRouting
) -> int:
    """The alert ``source_id`` no longer inhibits: send what it held back (once), or pass it to another critical."""
    held = (
        await session.execute(
            select(alerts).where(alerts.c.inhibited_by == source_id).order_by(alerts.c.id).with_for_update()
        )
    ).all()
    if not held:
        return 0
    others = await siblings(session, account_id)
    sent = 0
    for row in held:
        existing = existing_from(row)
        inhibitor = inhibitor_of(row.signal_type, existing.severity, others, routing.policy, existing.mode)
        decision = release(existing, inhibitor, routing.delivery.own_mode)
        cols: dict[str, Any] = {
            "inhibited_by": decision.inhibited_by,
            "held_notice": decision.held.value if decision.held else None,
            "updated_at": now,
        }
        if decision.notice is not None:
            cols["notice_mode"] = decision.mode.value
            if decision.mode.would_be_sent:
                cols["last_notified_at"] = now
            await queue_notice(
                session,
                alert_id=row.id,
                cause=f"released:{row.id}:{source_id}:{int(now.timestamp() * 1000)}",
                notice=decision.notice,
                signal=row.last_signal,
                destinations=routing.destinations(row.last_signal),
                mode=decision.mode,
            )
            sent += 1
        await update_alert(session, row.id, cols)
    return sent
