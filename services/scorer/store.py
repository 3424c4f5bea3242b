"""The scorer's reads and writes in PostgreSQL. Every function takes the batch's session: nothing commits here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scorer.tables import (
    account_profiles,
    scorer_clock,
)
from shared.signals import RiskSignal

SEEN_KEYS = text(
    "SELECT s.account_id, s.day, s.ids FROM unnest(CAST(:accounts AS text[]), CAST(:since AS date[]))"
    " AS a(account_id, since)"
    " JOIN seen_event_days s ON s.account_id = a.account_id AND s.day >= a.since"
)
ADD_SEEN_KEYS = text(
    "INSERT INTO seen_event_days (account_id, day, ids)"
    " SELECT * FROM unnest(CAST(:accounts AS text[]), CAST(:days AS date[]), CAST(:ids AS bytea[]))"
    " ON CONFLICT (account_id, day) DO UPDATE SET ids = seen_event_days.ids || excluded.ids"
)
_HEALTH_COLUMNS = (
    ("account_id", "text"),
    ("state", "text"),
    ("score", "float8"),
    ("band", "text"),
    ("components", "text"),
    ("active_signals", "text"),
    ("explanation", "text"),
    ("as_of", "timestamptz"),
    ("history", "text"),
    ("partition", "int"),
    ("scorecard", "text"),
    ("closed_on", "date"),
    ("closed_score", "float8"),
    ("closed_band", "text"),
    ("risk", "float8"),
    ("risk_explanation", "text"),
)
_KEPT_WHEN_NULL = {"partition", "risk", "risk_explanation"}  # a batch that does not know them leaves them
_JSON_COLUMNS = {"state", "components", "active_signals", "history"}
_UPSERT_HEALTH = text(
    "INSERT INTO account_health (" + ", ".join(c for c, _ in _HEALTH_COLUMNS) + ", updated_at)"
    " SELECT " + ", ".join(f"{c}::jsonb" if c in _JSON_COLUMNS else c for c, _ in _HEALTH_COLUMNS) + ", now()"
    " FROM unnest(" + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _HEALTH_COLUMNS) + ")"
    " AS t(" + ", ".join(c for c, _ in _HEALTH_COLUMNS) + ")"
    " ON CONFLICT (account_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = coalesce(excluded.{c}, account_health.{c})" if c in _KEPT_WHEN_NULL else f"{c} = excluded.{c}"
        for c, _ in _HEALTH_COLUMNS[1:]
    )
    + ", updated_at = now()"
)
_UPSERT_SCORE_HISTORY = text(
    "INSERT INTO score_history (account_id, day, score, band, risk)"
    " SELECT * FROM unnest(CAST(:account_id AS text[]), CAST(:day AS date[]), CAST(:score AS float8[]),"
    " CAST(:band AS text[]), CAST(:risk AS float8[]))"
    " ON CONFLICT (account_id, day) DO UPDATE SET score = excluded.score, band = excluded.band,"
    " risk = coalesce(excluded.risk, score_history.risk)"
)


_QUEUE_SIGNALS = text(
    "WITH queued AS (INSERT INTO signal_outbox (signal_id, account_id, payload)"
    " SELECT i, a, p::jsonb FROM unnest(CAST(:ids AS text[]), CAST(:accounts AS text[]), CAST(:payloads AS text[]))"
    " AS t(i, a, p) ON CONFLICT DO NOTHING RETURNING payload)"
    " INSERT INTO signal_log (signal_id, account_id, signal_type, severity, recovered, occurred_at, evidence,"
    " explanation)"
    " SELECT payload->>'signal_id', payload->>'account_id', payload->>'signal_type', payload->>'severity',"
    " (payload->>'recovered')::boolean, (payload->>'occurred_at')::timestamptz, payload->'evidence',"
    " payload->>'explanation' FROM queued ON CONFLICT DO NOTHING"
)
# The payload goes out as the text PostgreSQL holds, not decoded and encoded again on the way. In event-time order:
# one batch (one created_at) can close several days of an account, and its warning of Monday must reach the
# alerter before its escalation of Tuesday.
_OUTBOX_PAGE = text(
    "SELECT signal_id, account_id, payload::text AS payload FROM signal_outbox"
    " ORDER BY created_at, (payload->>'occurred_at')::timestamptz, signal_id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_DROP_FROM_OUTBOX = text("DELETE FROM signal_outbox WHERE signal_id = ANY(CAST(:ids AS text[]))")


async def upsert_profiles(session: AsyncSession, profiles: dict[str, dict[str, Any]]) -> None:
    if not profiles:
        return
    stmt = insert(account_profiles).values([{"account_id": k, "profile": v} for k, v in profiles.items()])
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["account_id"], set_={"profile": stmt.excluded.profile, "updated_at": func.now()}
        )
    )


_JSON = msgspec.json.Encoder()  # compact, and several times faster than json.dumps for a checkpoint's rows


def _compact(value: Any) -> str:
    return _JSON.encode(value).decode()


async def save_health(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    params: dict[str, list[Any]] = {
        name: [_compact(r[name]) if name in _JSON_COLUMNS else r[name] for r in rows] for name, _ in _HEALTH_COLUMNS
    }
    await session.execute(_UPSERT_HEALTH, params)


async def save_score_history(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    params = {k: [r.get(k) for r in rows] for k in ("account_id", "day", "score", "band", "risk")}
    await session.execute(_UPSERT_SCORE_HISTORY, params)


async def queue_signals(session: AsyncSession, signals: Iterable[RiskSignal]) -> None:
    signals = list(signals)
    if signals:
        params = {
            "ids": [s.signal_id for s in signals],
            "accounts": [s.account_id for s in signals],
            "payloads": [s.model_dump_json() for s in signals],
        }
        await session.execute(_QUEUE_SIGNALS, params)


async def outbox_page(session: AsyncSession, limit: int) -> list[tuple[str, str, bytes]]:
    """The oldest queued signals as (signal_id, account_id, payload JSON), locked; others' locked rows skipped."""
    rows = await session.execute(_OUTBOX_PAGE, {"limit": limit})
    return [(r.signal_id, r.account_id, r.payload.encode()) for r in rows]


async def drop_from_outbox(session: AsyncSession, signal_ids: list[str]) -> None:
    await session.execute(_DROP_FROM_OUTBOX, {"ids": signal_ids})


async def advance_clock(session: AsyncSession, topic: str, watermarks: dict[int, datetime]) -> None:
    if not watermarks:
        return
    stmt = insert(scorer_clock).values(
        [{"topic": topic, "partition": p, "watermark": w} for p, w in watermarks.items()]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["topic", "partition"],
            set_={"watermark": func.greatest(scorer_clock.c.watermark, stmt.excluded.watermark)},
        )
    )


async def read_clocks(session: AsyncSession, topic: str) -> dict[int, datetime]:
    """The latest event time seen on each partition of the events topic."""
    rows = await session.execute(
        select(scorer_clock.c.partition, scorer_clock.c.watermark).where(scorer_clock.c.topic == topic)
    )
    return {int(r.partition): r.watermark for r in rows}


# An event more than the grace period older than its account's watermark is refused as too late whether its
# id was seen or not, and a watermark never moves back; so the ids of such days no longer decide anything.
_PRUNE_SEEN = text(
    "DELETE FROM seen_event_days s USING account_health h"
    " WHERE s.account_id = h.account_id AND h.partition = ANY(CAST(:partitions AS int[]))"
    " AND s.day < (((h.state->>'wm')::timestamptz AT TIME ZONE 'UTC')::date - CAST(:grace_days AS int))"
)


async def prune_seen_events(session: AsyncSession, partitions: Collection[int], grace_days: int) -> int:
    """Forget the event ids that can no longer count (see _PRUNE_SEEN); returns how many rows went."""
    if not partitions:
        return 0
    result = await session.execute(_PRUNE_SEEN, {"partitions": list(partitions), "grace_days": grace_days})
    return int(getattr(result, "rowcount", 0) or 0)
