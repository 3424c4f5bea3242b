"""The scorer's read API, from PostgreSQL: one account's health, and the at-risk list."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import asc, desc, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scorer.tables import account_health, account_profiles, score_history
from shared.signals import Band


class SortKey(StrEnum):
    SCORE = "score"
    RISK = "risk"
    ARR = "arr"
    RENEWAL = "renewal"


async def account_health_view(session: AsyncSession, account_id: str, history_days: int) -> dict[str, Any]:
    row = (await session.execute(select(account_health).where(account_health.c.account_id == account_id))).first()
    if row is None:
        raise HTTPException(404, {"code": "unknown_account", "message": f"no health for {account_id!r}"})
    history = await session.execute(
        select(score_history.c.day, score_history.c.score, score_history.c.band, score_history.c.risk)
        .where(score_history.c.account_id == account_id)
        .order_by(desc(score_history.c.day))
        .limit(history_days)
    )
    profile = (
        await session.execute(select(account_profiles.c.profile).where(account_profiles.c.account_id == account_id))
    ).scalar_one_or_none()
    return {
        "account_id": account_id,
        "score": row.score,
        "band": row.band,
        "scorecard": row.scorecard,
        "as_of": row.as_of,
        "explanation": row.explanation,
        "churn_risk": row.risk,
        "churn_risk_explanation": row.risk_explanation,
        "components": row.components,
        "history": [
            {"day": h.day, "score": h.score, "band": h.band, "churn_risk": h.risk} for h in reversed(history.all())
        ],
        "active_signals": row.active_signals,
        "profile": profile,
    }


async def at_risk_list(session: AsyncSession, band: Band | None, sort: SortKey, limit: int) -> dict[str, Any]:
    arr = account_profiles.c.profile["arr"].as_float()
    renewal = account_profiles.c.profile["renewal_date"].as_string()
    order = {
        SortKey.SCORE: asc(account_health.c.score),
        SortKey.RISK: desc(account_health.c.risk).nulls_last(),
        SortKey.ARR: desc(arr).nulls_last(),
        SortKey.RENEWAL: asc(renewal).nulls_last(),
    }[sort]
    joined = account_health.outerjoin(account_profiles, account_profiles.c.account_id == account_health.c.account_id)
    stmt = (
        select(account_health, arr.label("arr"), renewal.label("renewal_date"), account_profiles.c.profile)
        .select_from(joined)
        .order_by(order, account_health.c.account_id)
        .limit(limit)
    )
    if band is not None:
        stmt = stmt.where(account_health.c.band == band.value)
    rows = (await session.execute(stmt)).all()
    accounts = [
        {
            "account_id": r.account_id,
            "name": (r.profile or {}).get("name"),
            "score": r.score,
            "band": r.band,
            "arr": r.arr,
            "renewal_date": r.renewal_date,
            "explanation": r.explanation,
            "churn_risk": r.risk,
            "churn_risk_explanation": r.risk_explanation,
            "active_signals": r.active_signals,
        }
        for r in rows
    ]
    return {"accounts": accounts}


def health_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    router = APIRouter(prefix="/v1/accounts", tags=["health"])

    @router.get("/{account_id}/health")
    async def get_account_health(
        account_id: str, history_days: Annotated[int, Query(ge=1, le=365)] = 90
    ) -> dict[str, Any]:
        async with sessions() as session:
            return await account_health_view(session, account_id, history_days)

    @router.get("")
    async def get_at_risk(
        band: Band | None = None,
        sort: SortKey = SortKey.SCORE,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> dict[str, Any]:
        async with sessions() as session:
            return await at_risk_list(session, band, sort, limit)

    return router
