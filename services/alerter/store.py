"""The alerter's SQL, all of it: the one writer of the core's effects, and every query the alerter runs.

Everything runs in the caller's transaction (the consumer loop's, the scheduler's, an API request's or a
delivery worker's) unless a method opens its own. The rules are elsewhere: ``core.decide_change`` returns
effects, ``apply_effects`` writes them; ``grouping.send_at`` says when a new outbox row goes out. Nothing
here sends: the delivery workers do, after commit, and only rows whose status is ``pending``; quiet,
historic and shadow notices (notice_mode.py) are written with their own status and stay there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerter.changes import AlertRow, Effects, QueuedNotice
from services.alerter.grouping import DestinationHistory, GroupTiming, groups, send_at
from services.alerter.lifecycle import AlertState, ExistingAlert, Notice
from services.alerter.notice_mode import NoticeMode
from services.alerter.routing import Channel
from services.alerter.tables import alerts, deliveries, digest_items, processed_signals
from shared.signals import RiskSignal, Severity

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
_ALERT_COLUMNS = [c for c in alerts.c if c.name != "last_signal"]
_DELIVERY_COLUMNS = [c for c in deliveries.c if c.name != "payload"]


def alert_row(row: Any) -> AlertRow:
    """An alerts row as the core sees it; its stored signal was validated when it arrived."""
    existing = ExistingAlert(
        AlertState(row.state),
        Severity(row.severity),
        row.last_notified_at,
        row.snoozed_until,
        Notice(row.held_notice) if row.held_notice else None,
        NoticeMode(row.notice_mode),
    )
    signal = RiskSignal.model_validate(row.last_signal)
    return AlertRow(row.id, row.account_id, row.signal_type, existing, signal, row.inhibited_by, row.reminders_sent)


# --- the core's inputs -------------------------------------------------------------------------------------


async def first_sightings(session: AsyncSession, signal_ids: Sequence[str]) -> set[str]:
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


async def account_alerts(session: AsyncSession, account_id: str) -> list[AlertRow]:
    """Every alert of the account, locked (in id order) for the rest of the transaction."""
    query = select(alerts).where(alerts.c.account_id == account_id).order_by(alerts.c.id).with_for_update()
    return [alert_row(r) for r in await session.execute(query)]


async def account_of(session: AsyncSession, alert_id: int) -> str | None:
    return (await session.execute(select(alerts.c.account_id).where(alerts.c.id == alert_id))).scalar()


# --- the writer ---------------------------------------------------------------------------------------------


async def apply_effects(session: AsyncSession, effects: Effects, now: datetime, timing: GroupTiming) -> int:
    """Write the alert rows, then queue the notices; returns how many live notices were queued."""
    ids: dict[tuple[str, str], int] = {}
    for w in effects.writes:
        cols = dict(w.cols)
        if w.signal is not None:
            payload = w.signal.model_dump(mode="json")
            stmt = insert(alerts).values(
                account_id=w.account_id, signal_type=w.signal_type, last_signal=payload, **cols
            )
            stmt = stmt.on_conflict_do_update(constraint="alerts_account_type", set_={**cols, "last_signal": payload})
            ids[(w.account_id, w.signal_type)] = int((await session.execute(stmt.returning(alerts.c.id))).scalar_one())
        elif w.alert_id is not None:
            await session.execute(update(alerts).where(alerts.c.id == w.alert_id).values(**cols))
            ids[(w.account_id, w.signal_type)] = w.alert_id
    live = 0
    for n in effects.notices:
        alert_id = n.alert_id if n.alert_id is not None else ids[(n.account_id, n.signal_type)]
        await _queue_notice(session, alert_id, n, now, timing)
        live += n.mode is NoticeMode.LIVE and any(not d.digest for d in n.destinations)
    return live


async def _queue_notice(
    session: AsyncSession, alert_id: int, n: QueuedNotice, now: datetime, timing: GroupTiming
) -> None:
    """One delivery per destination, or one digest item for digest destinations. Idempotent per cause.

    Rows of a quiet, historic or shadow notice start in that status (not ``pending``): recorded, never sent.
    A live row waits for its account's group (grouping.py)."""
    payload = n.signal.model_dump(mode="json")
    direct = [d for d in n.destinations if not d.digest]
    history = await _destination_history(session, n.account_id) if n.mode is NoticeMode.LIVE and direct else {}
    now_rows = [
        {
            "alert_id": alert_id,
            "account_id": n.account_id,
            "cause": n.cause,
            "notice": n.notice.value,
            "channel": d.channel.value,
            "target": d.target,
            "route": d.route,
            "mention": d.mention,
            "payload": payload,
            "status": n.mode.outbox_status,
            "next_attempt_at": send_at(now, timing, history.get((d.channel.value, d.target), DestinationHistory()))
            if n.mode is NoticeMode.LIVE and groups(d.channel)
            else now,
        }
        for d in direct
    ]
    later_rows = [
        {
            "alert_id": alert_id,
            "cause": n.cause,
            "notice": n.notice.value,
            "target": d.target,
            "route": d.route,
            "payload": payload,
            "mode": n.mode.value,
        }
        for d in n.destinations
        if d.digest
    ]
    if now_rows:
        await session.execute(insert(deliveries).values(now_rows).on_conflict_do_nothing())
    if later_rows:
        await session.execute(insert(digest_items).values(later_rows).on_conflict_do_nothing())
    if n.destinations:
        NOTICES.labels(n.mode.value).inc()
    for d in n.destinations:
        ALERTS.labels(n.signal_type, n.notice.value, d.route).inc()


async def _destination_history(session: AsyncSession, account_id: str) -> dict[tuple[str, str], DestinationHistory]:
    pending = deliveries.c.status == "pending"
    query = (
        select(
            deliveries.c.channel,
            deliveries.c.target,
            func.min(deliveries.c.next_attempt_at).filter(pending),
            func.max(deliveries.c.sent_at),
        )
        .where(deliveries.c.account_id == account_id)
        .group_by(deliveries.c.channel, deliveries.c.target)
    )
    return {(c, t): DestinationHistory(p, s) for c, t, p, s in await session.execute(query)}


# --- the scheduler's queries --------------------------------------------------------------------------------


async def due_alerts(session: AsyncSession, now: datetime, repeat_interval: timedelta | None) -> list[tuple[int, str]]:
    """(alert id, account id) of alerts whose snooze expired or whose reminder is due; the core re-checks."""
    conditions = [(alerts.c.state == AlertState.SNOOZED.value) & (alerts.c.snoozed_until <= now)]
    if repeat_interval is not None:
        stale = alerts.c.last_notified_at <= now - repeat_interval
        # historic and quiet alerts get none; left in the query they would crowd out the live ones
        told = alerts.c.notice_mode.in_([m.value for m in NoticeMode if m.would_be_sent])
        conditions.append((alerts.c.state == AlertState.OPEN.value) & stale & told)
    query = (
        select(alerts.c.id, alerts.c.account_id)
        .where(or_(*conditions), alerts.c.inhibited_by.is_(None))  # an inhibited alert waits for its release
        .order_by(alerts.c.id)
        .limit(500)
    )
    return [(int(i), str(a)) for i, a in await session.execute(query)]


async def stale_holds(session: AsyncSession) -> list[tuple[int, str]]:
    """(critical alert, account of the held alerts) pairs still holding alerts back although the critical no
    longer inhibits, e.g. resolved while a warning was being held in a concurrent transaction."""
    source = alerts.alias("source")
    query = (
        select(source.c.id, alerts.c.account_id)
        .join(alerts, alerts.c.inhibited_by == source.c.id)
        .where(
            (source.c.severity != Severity.CRITICAL.value)
            | source.c.state.not_in([AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value])
        )
        .distinct()
    )
    return [(int(i), str(a)) for i, a in await session.execute(query)]


async def waiting_digests(session: AsyncSession) -> list[tuple[str, NoticeMode, datetime]]:
    """(target, mode, oldest item's time) of every digest with items waiting."""
    query = (
        select(digest_items.c.target, digest_items.c.mode, func.min(digest_items.c.created_at))
        .where(digest_items.c.delivery_id.is_(None))
        .group_by(digest_items.c.target, digest_items.c.mode)
    )
    return [(t, NoticeMode(m), at) for t, m, at in await session.execute(query)]


@dataclass(frozen=True)
class DigestRow:
    cause: str  # "digest:<target hash>:<period>[:<mode>]"
    period: str
    notice: str


async def collect_digest(session: AsyncSession, target: str, mode: NoticeMode, digest: DigestRow) -> int:
    """Move the target's waiting items into one digest delivery; 0 when another instance took them."""
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
        "period": digest.period,
        "items": [{"alert_id": i.alert_id, "notice": i.notice, "signal": i.payload} for i in items],
    }
    row = {
        "cause": digest.cause,
        "notice": digest.notice,
        "channel": Channel.EMAIL.value,
        "target": target,
        "route": items[0].route,
        "payload": payload,
        "status": mode.outbox_status,
    }
    delivery_id = (await session.execute(insert(deliveries).values(row).returning(deliveries.c.id))).scalar_one()
    ids = [i.id for i in items]
    await session.execute(update(digest_items).where(digest_items.c.id.in_(ids)).values(delivery_id=delivery_id))
    return 1


@dataclass(frozen=True)
class OutboxFigures:
    pending: int
    oldest_pending_at: datetime | None
    dead: int
    digest_waiting: int


async def outbox_figures(session: AsyncSession) -> OutboxFigures:
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
    return OutboxFigures(int(pending[0]), pending[1], int(dead), int(waiting))


# --- the delivery workers' queries --------------------------------------------------------------------------


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the next pending delivery falls due (a group waiting, a retry's backoff); None when none waits."""
    query = select(func.min(deliveries.c.next_attempt_at)).where(deliveries.c.status == "pending")
    due: datetime | None = (await session.execute(query)).scalar()
    return due


async def next_due(session: AsyncSession, held_targets: Sequence[str], group_limit: int) -> list[Row[Any]]:
    """The oldest due delivery whose target is free, locked, with the rest of its account's group for the same
    destination that is due too (oldest first); [] when none is due."""
    query = (
        select(deliveries)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= func.now())
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if held_targets:
        query = query.where(deliveries.c.target.not_in(held_targets))
    first = (await session.execute(query)).first()
    if first is None:
        return []
    if first.account_id is None or not groups(Channel(first.channel)):
        return [first]
    rest = (
        await session.execute(
            select(deliveries)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= func.now(),
                deliveries.c.account_id == first.account_id,
                deliveries.c.channel == first.channel,
                deliveries.c.target == first.target,
                deliveries.c.id != first.id,
            )
            .order_by(deliveries.c.id)
            .limit(group_limit - 1)
            .with_for_update(skip_locked=True)
        )
    ).all()
    return [first, *rest]


async def record_attempt(session: AsyncSession, ids: Sequence[int], values: dict[str, Any]) -> None:
    """Every row of one send gets its outcome; each counts the attempt."""
    cols = {k: v for k, v in values.items() if k != "attempts"}
    stmt = update(deliveries).where(deliveries.c.id.in_(ids)).values(attempts=deliveries.c.attempts + 1, **cols)
    await session.execute(stmt)


# --- the API's reads ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    state: AlertState | None = None
    account_ids: tuple[str, ...] = ()
    signal_type: str | None = None
    severity: str | None = None
    since: datetime | None = None  # created at or after
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
        (alerts.c.signal_type, f.signal_type),
        (alerts.c.severity, f.severity),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.account_ids:
        query = query.where(alerts.c.account_id.in_(f.account_ids))
    if f.since is not None:
        query = query.where(alerts.c.created_at >= f.since)
    rows = await session.execute(query.order_by(alerts.c.updated_at.desc(), alerts.c.id.desc()).limit(f.limit))
    return [_jsonable(r) for r in rows]


async def get_alert(session: AsyncSession, alert_id: int) -> dict[str, Any]:
    """The alert with its deliveries (one per notice and destination) and its notices (one per cause)."""
    row = (await session.execute(select(alerts).where(alerts.c.id == alert_id))).first()
    if row is None:
        raise AlertNotFound(alert_id)
    found = _jsonable(row)
    found["historic"] = row.notice_mode == NoticeMode.HISTORIC.value
    found["quiet"] = row.notice_mode == NoticeMode.QUIET.value
    found["quality"] = row.last_signal.get("quality")
    query = select(*_DELIVERY_COLUMNS).where(deliveries.c.alert_id == alert_id).order_by(deliveries.c.id)
    found["deliveries"] = [_delivery_json(d) for d in await session.execute(query)]
    items = await session.execute(
        select(digest_items.c.cause, digest_items.c.notice, digest_items.c.created_at, digest_items.c.mode)
        .where(digest_items.c.alert_id == alert_id)
        .order_by(digest_items.c.id)
    )
    found["notices"] = _notices(found["deliveries"], [_jsonable(i) for i in items])
    return found


def _delivery_json(row: Any) -> dict[str, Any]:
    """A delivery; ``signal_id`` repeats ``cause`` for one version (its old name), ``destination`` and ``error``
    name ``target`` and ``last_error`` as the console reads them."""
    d = _jsonable(row)
    return d | {"signal_id": d["cause"], "destination": d["target"], "error": d["last_error"]}


def _notices(sent: list[dict[str, Any]], digested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_cause: dict[str, dict[str, Any]] = {}
    for d in sent:
        n = by_cause.setdefault(
            d["cause"], {"cause": d["cause"], "notice": d["notice"], "created_at": d["created_at"], "destinations": []}
        )
        n["destinations"].append({"channel": d["channel"], "destination": d["target"], "status": d["status"]})
    for i in digested:
        n = by_cause.setdefault(
            i["cause"], {"cause": i["cause"], "notice": i["notice"], "created_at": i["created_at"], "destinations": []}
        )
        n["destinations"].append({"channel": "digest", "destination": None, "status": i["mode"]})
    return list(by_cause.values())


async def list_deliveries(session: AsyncSession, status: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(*_DELIVERY_COLUMNS).order_by(deliveries.c.id.desc()).limit(limit)
    if status:
        query = query.where(deliveries.c.status == status)
    return [_delivery_json(r) for r in await session.execute(query)]
