"""What ingest has published about each account, written after Kafka acknowledged it.

The compacted accounts topic is the truth the scorer reads; this table is ingest's memory of its own writes,
so GET /v1/accounts/{id} is a key lookup and a Segment group call can update a profile field by field.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.tables import published_accounts
from shared.accounts import AccountProfile


async def remember_profiles(engine: AsyncEngine, profiles: Iterable[AccountProfile]) -> None:
    rows = [{"account_id": p.account_id, "profile": p.model_dump(mode="json")} for p in profiles]
    if not rows:
        return
    stmt = insert(published_accounts).values(rows)
    async with engine.begin() as conn:
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["account_id"], set_={"profile": stmt.excluded.profile, "updated_at": func.now()}
            )
        )


async def known_profiles(engine: AsyncEngine, account_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(published_accounts.c.account_id, published_accounts.c.profile).where(
                    published_accounts.c.account_id.in_(ids)
                )
            )
        ).all()
    return {r.account_id: dict(r.profile) for r in rows}


async def known_profile(engine: AsyncEngine, account_id: str) -> tuple[dict[str, Any], datetime] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(published_accounts).where(published_accounts.c.account_id == account_id))
        ).one_or_none()
    return (dict(row.profile), row.updated_at) if row is not None else None
