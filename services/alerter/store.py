"""Reading alerts and deliveries for the API, and a person's ack / snooze / resolve.

An alert says how its latest notice was recorded (``notice_mode``: live, quiet, historic or shadow;
``historic``: true for one a backfill raised; ``quiet``: true for one whose rule's backtested lift is below the
floor, with that ``quality``); deliveries list by status, including ``quiet``, ``historic`` and ``shadow``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.inhibition import NoticeRouting, existing_from, hold_back, release_held, stops_inhibiting
from services.alerter.lifecycle import Action, AlertState, Decision, ExistingAlert, Notice, apply_action
from services.alerter.notice_mode import NoticeMode
from services.alerter.outbox import alert_columns, queue_notice, update_alert
from services.alerter.tables import alerts, deliveries

_ALERT_COLUMNS = [c for c in alerts.c if c.name != "last_signal"]
_DELIVERY_COLUMNS = [c for c in deliveries.c if c.name != "payload"]


@dataclass(frozen=True)
class AlertFilter:
    state: AlertState | None = None
    account_id: str | None = None
    signal_type: str | None = None
    severity: str | None = None
    limit: int = 100


class AlertNotFound(LookupError):
    pass


def _jsonable(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row._mapping.items()}


async def list_alerts(session: AsyncSession, f: AlertFilter) -> list[dict[str, Any]]:
    query = select(
        *_ALERT_COLUMNS,
        alerts.c.last_signal["explanation"].astext.label("explanation"),
        (alerts.c.notice_mode == NoticeMode.HISTORIC.value).label("historic"),
        (alerts.c.notice_mode == NoticeMode.QUIET.value).label("quiet"),
        alerts.c.last_signal["quality"].label("quality"),
    )
    for column, value in (
        (alerts.c.state, f.state.value if f.state else None),
        (alerts.c.account_id, f.account_id),
        (alerts.c.signal_type, f.signal_type),
        (alerts.c.severity, f.severity),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = await session.execute(query.order_by(alerts.c.updated_at.desc(), alerts.c.id.desc()).limit(f.limit))
    return [_jsonable(r) for r in rows]


async def get_alert(session: AsyncSession, alert_id: int) -> dict[str, Any]:
    row = (await session.execute(select(alerts).where(alerts.c.id == alert_id))).first()
    if row is None:
        raise AlertNotFound(alert_id)
    found = _jsonable(row)
    found["historic"] = row.notice_mode == NoticeMode.HISTORIC.value
    found["quiet"] = row.notice_mode == NoticeMode.QUIET.value
    found["quality"] = row.last_signal.get("quality")
    found["deliveries"] = [
        _jsonable(d)
        for d in await session.execute(
            select(*_DELIVERY_COLUMNS).where(deliveries.c.alert_id == alert_id).order_by(deliveries.c.id)
        )
    ]
    return found


async def list_deliveries(session: AsyncSession, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(*_DELIVERY_COLUMNS).order_by(deliveries.c.id.desc()).limit(limit)
    if status:
        query = query.where(deliveries.c.status == status)
    return [_jsonable(r) for r in await session.execute(query)]


async def act_on_alert(
    session: AsyncSession,
    alert_id: int,
    action: Action,
    now: datetime,
    snooze_for: timedelta,
    routing: NoticeRouting | None = None,
) -> dict[str, Any]:
    """Ack, snooze or resolve; raises AlertNotFound or lifecycle.TransitionRefused. Caller commits.

    With ``routing``, resolving sends the same short "resolved" notice a recovery signal does (unless an
    inhibition holds it back), and a critical alert that is resolved or snoozed releases what it held back.
    """
    row = (await session.execute(select(alerts).where(alerts.c.id == alert_id).with_for_update())).first()
    if row is None:
        raise AlertNotFound(alert_id)
    before = existing_from(row)
    state = apply_action(before.state, action)
    cols: dict[str, Any] = {"state": state.value, "updated_at": now}
    if action is Action.ACK:
        cols.update(acknowledged_at=now, snoozed_until=None)
    elif action is Action.SNOOZE:
        cols["snoozed_until"] = now + snooze_for
    elif before.state is not AlertState.RESOLVED:
        cols.update(resolved_at=now, snoozed_until=None)
    await update_alert(session, alert_id, cols)
    if routing is not None:
        notice = Notice.RESOLVED if cols.get("resolved_at") else None
        after = Decision(state, before.severity, notice, mode=routing.delivery.follow_up(before.seen_mode))
        await _notify(session, row, before, after, now, routing)
    return await get_alert(session, alert_id)


async def _notify(
    session: AsyncSession, row: Any, before: ExistingAlert, after: Decision, now: datetime, routing: NoticeRouting
) -> None:
    if after.notice is not None:
        decision = await hold_back(
            session,
            after,
            account_id=row.account_id,
            signal_type=row.signal_type,
            held_before=before.held,
            policy=routing.policy,
        )
        await update_alert(session, row.id, alert_columns(decision, now))
        if decision.notice is not None:
            await queue_notice(
                session,
                alert_id=row.id,
                cause=f"resolve:{row.id}:{int(now.timestamp() * 1000)}",
                notice=decision.notice,
                signal=row.last_signal,
                destinations=routing.destinations(row.last_signal),
                mode=decision.mode,
            )
    if stops_inhibiting(before, after):
        await release_held(session, source_id=row.id, account_id=row.account_id, now=now, routing=routing)
