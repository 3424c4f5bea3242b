"""Writing alert changes and the deliveries they cause, inside the caller's transaction (the outbox).

Used by the signal processor (same transaction as the consumed offsets) and by the alert clock (reminders,
expired snoozes). Nothing here sends: the delivery worker does, after commit, and only rows whose status is
``pending``; quiet, historic and shadow notices (notice_mode.py) are written with their own status and stay
there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.lifecycle import AlertState, Decision, Notice
from services.alerter.notice_mode import NoticeMode
from services.alerter.routing import Destination
from services.alerter.tables import alerts, deliveries, digest_items

ALERTS = Counter(
    "churnwatch_alerter_alerts_total",
    "Alert notices created, by signal type, notice and route",
    ["signal_type", "notice", "route"],
)
NOTICES = Counter(
    "churnwatch_alerter_notices_total",
    "Notices queued, by mode: live ones are delivered, quiet, historic and shadow ones only recorded",
    ["mode"],
)


def alert_columns(decision: Decision, now: datetime) -> dict[str, Any]:
    """The alert's columns after a decision. Pure."""
    cols: dict[str, Any] = {
        "state": decision.state.value,
        "severity": decision.severity.value,
        "updated_at": now,
        "inhibited_by": decision.inhibited_by,
        "held_notice": decision.held.value if decision.held else None,
    }
    told = decision.mode.would_be_sent  # shadow keeps the times a live alerter would have; quiet tells no one
    if decision.notice is not None or decision.held is not None:
        cols["notice_mode"] = decision.mode.value
    if decision.notice is not None and told:
        cols["last_notified_at"] = now
    if Notice.NEW in (decision.notice, decision.held):
        cols.update(opened_at=now, acknowledged_at=None, snoozed_until=None, resolved_at=None, reminders_sent=0)
    if decision.held is Notice.NEW or (decision.notice is Notice.NEW and not told):
        cols["last_notified_at"] = None  # reopened while inhibited, or from history: nobody has been told yet
    if decision.state is AlertState.RESOLVED:
        cols.update(resolved_at=now, snoozed_until=None)
    if decision.state is AlertState.OPEN:
        cols["snoozed_until"] = None
    return cols


async def upsert_alert(
    session: AsyncSession, *, account_id: str, signal_type: str, signal: dict[str, Any], cols: dict[str, Any]
) -> int:
    stmt = insert(alerts).values(account_id=account_id, signal_type=signal_type, last_signal=signal, **cols)
    stmt = stmt.on_conflict_do_update(constraint="alerts_account_type", set_={**cols, "last_signal": signal})
    return int((await session.execute(stmt.returning(alerts.c.id))).scalar_one())


async def update_alert(session: AsyncSession, alert_id: int, cols: dict[str, Any]) -> None:
    await session.execute(update(alerts).where(alerts.c.id == alert_id).values(**cols))


async def queue_notice(
    session: AsyncSession,
    *,
    alert_id: int,
    cause: str,
    notice: Notice,
    signal: dict[str, Any],
    destinations: list[Destination],
    mode: NoticeMode = NoticeMode.LIVE,
) -> None:
    """One delivery per destination, or one digest item for digest destinations. Idempotent per cause.

    Rows of a quiet, historic or shadow notice start in that status (not ``pending``): recorded, never sent."""
    now_rows = [
        {
            "alert_id": alert_id,
            "signal_id": cause,
            "notice": notice.value,
            "channel": d.channel.value,
            "target": d.target,
            "route": d.route,
            "mention": d.mention,
            "payload": signal,
            "status": mode.outbox_status,
        }
        for d in destinations
        if not d.digest
    ]
    later_rows = [
        {
            "alert_id": alert_id,
            "signal_id": cause,
            "notice": notice.value,
            "target": d.target,
            "route": d.route,
            "payload": signal,
            "mode": mode.value,
        }
        for d in destinations
        if d.digest
    ]
    if now_rows:
        await session.execute(insert(deliveries).values(now_rows).on_conflict_do_nothing())
    if later_rows:
        await session.execute(insert(digest_items).values(later_rows).on_conflict_do_nothing())
    if destinations:
        NOTICES.labels(mode.value).inc()
    for d in destinations:
        ALERTS.labels(str(signal.get("signal_type")), notice.value, d.route).inc()
