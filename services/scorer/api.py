"""The scorer's read API, from PostgreSQL: one account's health, the at-risk list and the portfolio totals.

The list (``GET /v1/accounts``) filters by band, CSM email, touch tier, plan, an active signal type, a search
over name and id, and a set of ids; it sorts by a named key (each with its natural direction, ties broken by
account id, so pages never overlap) and pages by offset with the total count of the filtered set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import Date, asc, case, cast, desc, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from services.scorer import data_problems
from services.scorer.tables import account_health, account_profiles, score_history
from shared.accounts import TouchTier
from shared.signals import Band, SignalType

CHANGE_DAYS = 7
_PROFILE = account_profiles.c.profile
_ARR = _PROFILE["arr"].as_float()
_RENEWAL = _PROFILE["renewal_date"].as_string()
_NAME = _PROFILE["name"].as_string()
_csm_email = func.lower(_PROFILE["csm"]["email"].as_string())
_CSM_NAME = _PROFILE["csm"]["name"].as_string()
_BAND_RANK = case((account_health.c.band == "red", 0), (account_health.c.band == "yellow", 1), else_=2)
_TIP_DAY = cast(func.timezone("UTC", account_health.c.as_of), Date)
# a correlated lookup by primary key per row: cheaper than joining the whole history when 10,000 rows are sorted
_WEEK_AGO_SCORE = (
    select(score_history.c.score)
    .where(score_history.c.account_id == account_health.c.account_id, score_history.c.day == _TIP_DAY - CHANGE_DAYS)
    .scalar_subquery()
)
_CHANGE = (account_health.c.score - _WEEK_AGO_SCORE).label("change_7d")


class SortKey(StrEnum):
    SCORE = "score"  # lowest first
    RISK = "risk"  # highest churn risk first
    ARR = "arr"  # biggest first
    RENEWAL = "renewal"  # soonest first
    CHANGE = "change"  # the biggest 7-day fall first
    BAND = "band"  # red, yellow, green; lowest score first within a band
    NAME = "name"
    CSM = "csm"


_ORDER: dict[SortKey, list[ColumnElement[Any]]] = {
    SortKey.SCORE: [asc(account_health.c.score)],
    SortKey.RISK: [desc(account_health.c.risk).nulls_last()],
    SortKey.ARR: [desc(_ARR).nulls_last()],
    SortKey.RENEWAL: [asc(_RENEWAL).nulls_last()],
    SortKey.CHANGE: [asc(literal_column("change_7d")).nulls_last()],
    SortKey.BAND: [asc(_BAND_RANK), asc(account_health.c.score)],
    SortKey.NAME: [asc(func.lower(_NAME)).nulls_last()],
    SortKey.CSM: [asc(_csm_email).nulls_last(), asc(account_health.c.score)],
}


@dataclass(frozen=True)
class AccountQuery:
    """What the at-risk list shows: every field optional, ``None`` meaning no filter."""

    band: Band | None = None
    csm: str | None = None
    tier: TouchTier | None = None
    plan: str | None = None
    signal_type: SignalType | None = None
    q: str | None = None
    account_ids: tuple[str, ...] = ()
    sort: SortKey = SortKey.SCORE
    limit: int = 50
    offset: int = 0


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conditions(query: AccountQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.band is not None:
        where.append(account_health.c.band == query.band.value)
    if query.csm:
        where.append(_csm_email == query.csm.strip().lower())
    if query.tier is not None:
        where.append(_PROFILE["touch_tier"].as_string() == query.tier.value)
    if query.plan:
        where.append(_PROFILE["plan"].as_string() == query.plan)
    if query.signal_type is not None:
        where.append(account_health.c.active_signals.has_key(query.signal_type.value))
    if query.q and query.q.strip():
        pattern = _like(query.q.strip())
        where.append(or_(account_health.c.account_id.ilike(pattern), _NAME.ilike(pattern)))
    if query.account_ids:
        where.append(account_health.c.account_id.in_(query.account_ids))
    return where


def _listed(r: Any) -> dict[str, Any]:
    profile = r.profile or {}
    return {
        "account_id": r.account_id,
        "name": profile.get("name"),
        "score": r.score,
        "band": r.band,
        "change_7d": None if r.change_7d is None else round(r.change_7d, 1),
        "arr": r.arr,
        "renewal_date": r.renewal_date,
        "plan": profile.get("plan"),
        "touch_tier": profile.get("touch_tier"),
        "csm": profile.get("csm"),
        "lifecycle_stage": profile.get("lifecycle_stage"),
        "explanation": r.explanation,
        "as_of": r.as_of,
        "churn_risk": r.risk,
        "churn_risk_explanation": r.risk_explanation,
        "active_signals": r.active_signals,
    }


def _joined() -> Any:
    return account_health.outerjoin(account_profiles, account_profiles.c.account_id == account_health.c.account_id)


async def at_risk_list(session: AsyncSession, query: AccountQuery) -> dict[str, Any]:
    """Two steps, so 10,000 accounts stay fast: the page's ids from the narrow sort keys (with the count of the
    filtered set), then only those rows in full with their 7-day change."""
    keys = (
        select(account_health.c.account_id, func.count().over().label("total"))
        .select_from(_joined())
        .where(*_conditions(query))
        .order_by(*_ORDER[query.sort], account_health.c.account_id)
        .limit(query.limit)
        .offset(query.offset)
    )
    if query.sort is SortKey.CHANGE:
        keys = keys.add_columns(_CHANGE)
    page = (await session.execute(keys)).all()
    if page:
        total = int(page[0].total)
    else:  # past the last page (or nothing matches): the count alone
        count = select(func.count()).select_from(_joined()).where(*_conditions(query))
        total = int((await session.execute(count)).scalar_one())
    ids = [r.account_id for r in page]
    rows = await session.execute(
        select(account_health, _ARR.label("arr"), _RENEWAL.label("renewal_date"), _PROFILE, _CHANGE)
        .select_from(_joined())
        .where(account_health.c.account_id.in_(ids))
    )
    by_id = {r.account_id: r for r in rows}
    return {
        "accounts": [_listed(by_id[i]) for i in ids if i in by_id],
        "total": total,
        "offset": query.offset,
        "limit": query.limit,
        "sort": query.sort.value,
    }


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


async def portfolio(session: AsyncSession, csm: str | None) -> dict[str, Any]:
    """Accounts and ARR per band and per CSM (ARR at risk: the red band's), over every scored account."""
    joined = account_health.outerjoin(account_profiles, account_profiles.c.account_id == account_health.c.account_id)
    where = [_csm_email == csm.strip().lower()] if csm else []
    arr = func.coalesce(func.sum(_ARR), 0.0)
    at_risk = func.coalesce(func.sum(case((account_health.c.band == "red", _ARR), else_=0.0)), 0.0)
    bands = await session.execute(
        select(account_health.c.band, func.count().label("accounts"), arr.label("arr"))
        .select_from(joined)
        .where(*where)
        .group_by(account_health.c.band)
    )
    csms = await session.execute(
        select(
            _csm_email.label("email"),
            func.max(_CSM_NAME).label("name"),
            func.count().label("accounts"),
            func.count().filter(account_health.c.band == "red").label("red"),
            arr.label("arr"),
            at_risk.label("arr_at_risk"),
        )
        .select_from(joined)
        .where(*where)
        .group_by(_csm_email)
        .order_by(desc(at_risk), _csm_email)
    )
    by_band = [{"band": b.band, "accounts": b.accounts, "arr": float(b.arr)} for b in bands]
    return {
        "bands": by_band,
        "accounts": sum(b["accounts"] for b in by_band),
        "arr": sum(b["arr"] for b in by_band),
        "arr_at_risk": sum(b["arr"] for b in by_band if b["band"] == "red"),
        "csms": [
            {
                "email": c.email,
                "name": c.name,
                "accounts": c.accounts,
                "red": c.red,
                "arr": float(c.arr),
                "arr_at_risk": float(c.arr_at_risk),
            }
            for c in csms
        ],
    }


def health_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/v1/accounts/{account_id}/health")
    async def get_account_health(
        account_id: str, history_days: Annotated[int, Query(ge=1, le=365)] = 90
    ) -> dict[str, Any]:
        async with sessions() as session:
            return await account_health_view(session, account_id, history_days)

    @router.get("/v1/accounts")
    async def get_at_risk(
        band: Band | None = None,
        csm: Annotated[str | None, Query(max_length=320, description="the CSM's email")] = None,
        tier: TouchTier | None = None,
        plan: Annotated[str | None, Query(max_length=100)] = None,
        signal_type: Annotated[SignalType | None, Query(description="has an active signal of this type")] = None,
        q: Annotated[str | None, Query(max_length=200, description="part of the name or id")] = None,
        account_id: Annotated[list[str] | None, Query(max_length=500)] = None,
        sort: SortKey = SortKey.SCORE,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> dict[str, Any]:
        query = AccountQuery(band, csm, tier, plan, signal_type, q, tuple(account_id or ()), sort, limit, offset)
        async with sessions() as session:
            return await at_risk_list(session, query)

    @router.get("/v1/portfolio")
    async def get_portfolio(csm: Annotated[str | None, Query(max_length=320)] = None) -> dict[str, Any]:
        async with sessions() as session:
            return await portfolio(session, csm)

    return router


def data_problems_router(sessions: async_sessionmaker[AsyncSession], events_topic: str) -> APIRouter:
    router = APIRouter(tags=["data quality"])

    @router.get("/v1/data-problems")
    async def get_data_problems() -> dict[str, Any]:
        """Data problems open now (a silent source, a quiet-day spike), and whether a person released them."""
        async with sessions() as session:
            found = await data_problems.open_problems(session, events_topic)
        return {"problems": [asdict(p) for p in found]}

    return router
