"""The at-risk list (home page) and the portfolio view: reads from the scorer and the alerter."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse

from services.console.auth import SignedIn, signed_in
from services.console.listing import SORT_KEYS, Paging, parse_filters
from services.console.portfolio import alerts_since, latest_backtest_report, week_of_alerts
from services.console.rendering import render
from services.console.settings import ConsoleSettings
from services.console.upstream import Upstream, UpstreamError
from shared.accounts import TouchTier
from shared.signals import Band, SignalType

User = Annotated[SignedIn, Depends(signed_in)]
router = APIRouter()
ID_CHUNK = 100  # account ids per scorer/alerter query (a URL stays a few kB)


def _upstreams(request: Request) -> tuple[Upstream, Upstream]:
    return request.app.state.scorer, request.app.state.alerter


async def open_alert_counts(alerter: Upstream, account_ids: list[str]) -> dict[str, int] | None:
    """Open (not resolved) alerts per account, or None when the alerter does not answer (the list still shows)."""
    if not account_ids:
        return {}
    params = [("account_id", a) for a in account_ids] + [("limit", 1000)]
    try:
        alerts = (await alerter.get("/v1/alerts", params))["alerts"]
    except UpstreamError:
        return None
    wanted = set(account_ids)
    return dict(Counter(a["account_id"] for a in alerts if a["state"] != "resolved" and a["account_id"] in wanted))


async def data_problems(scorer: Upstream) -> list[dict[str, Any]]:
    """The data problems open now (a silent source): the list says why some alerts are held back. None shown
    when the scorer cannot say (the list itself has just been read from it, so this is rare)."""
    try:
        return list((await scorer.get("/v1/data-problems"))["problems"])
    except UpstreamError:
        return []


@router.get("/")
async def at_risk_list(request: Request, user: User) -> Response:
    settings: ConsoleSettings = request.app.state.settings
    filters = parse_filters(request.query_params)
    scorer, alerter = _upstreams(request)
    listing = await scorer.get("/v1/accounts", filters.scorer_params(me=user.email, page_size=settings.page_size))
    accounts = listing["accounts"]
    counts = await open_alert_counts(alerter, [a["account_id"] for a in accounts])
    problems = await data_problems(scorer)
    paging = Paging.of(filters.page, int(listing.get("total", len(accounts))), settings.page_size, len(accounts))
    return render(
        request,
        "list.html",
        user=user,
        filters=filters,
        accounts=accounts,
        open_alerts=counts,
        data_problems=problems,
        paging=paging,
        sort_keys=SORT_KEYS,
        bands=[b.value for b in Band],
        tiers=[t.value for t in TouchTier],
        signal_types=[s.value for s in SignalType],
    )


async def csm_of_accounts(scorer: Upstream, account_ids: list[str]) -> dict[str, str | None]:
    chunks = [account_ids[i : i + ID_CHUNK] for i in range(0, len(account_ids), ID_CHUNK)]
    pages = await asyncio.gather(
        *(scorer.get("/v1/accounts", [("account_id", a) for a in chunk] + [("limit", 1000)]) for chunk in chunks)
    )
    return {a["account_id"]: (a.get("csm") or {}).get("email") for page in pages for a in page["accounts"]}


@router.get("/portfolio")
async def portfolio(request: Request, user: User) -> Response:
    settings: ConsoleSettings = request.app.state.settings
    scorer, alerter = _upstreams(request)
    since = datetime.now(UTC) - timedelta(days=7)
    totals, recent = await asyncio.gather(
        scorer.get("/v1/portfolio"), alerter.get("/v1/alerts", [("since", since.isoformat()), ("limit", 1000)])
    )
    week = alerts_since(recent["alerts"], since)
    csm_of = await csm_of_accounts(scorer, sorted({str(a["account_id"]) for a in week}))
    report = latest_backtest_report(settings.backtest_dir)
    return render(
        request,
        "portfolio.html",
        user=user,
        totals=totals,
        week=week_of_alerts(week, csm_of),
        backtest=report,
        backtest_time=datetime.fromtimestamp(report.stat().st_mtime, UTC) if report else None,
    )


@router.get("/backtest/latest")
async def latest_backtest(request: Request, user: User) -> Response:
    report = latest_backtest_report(request.app.state.settings.backtest_dir)
    if report is None:
        raise HTTPException(404, "No backtest report yet: run `make backtest`.")
    return FileResponse(report, media_type="text/html")
