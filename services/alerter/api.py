"""The alert API: list and inspect alerts, ack / snooze / resolve them, and the signed one-click links.

Write endpoints take ``Authorization: Bearer <CHURNWATCH_ALERTER_API_TOKEN>``; with no token configured they
are refused (403), so an alerter is never writable by accident. The signed links need no token: the HMAC
signature is the credential for that one action on that one alert until the link expires.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.inhibition import NoticeRouting
from services.alerter.lifecycle import Action, AlertState, TransitionRefused
from services.alerter.links import link_valid
from services.alerter.store import AlertFilter, AlertNotFound, act_on_alert, get_alert, list_alerts, list_deliveries


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ApiConfig:
    sessions: async_sessionmaker[AsyncSession]
    token: str | None
    link_secret: str | None
    snooze_for: timedelta
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    routing: NoticeRouting | None = None  # resolve sends a notice; a critical's resolve/snooze ends inhibition


class SnoozeRequest(BaseModel):
    minutes: Annotated[float, Field(gt=0, le=60 * 24 * 90)] | None = None


def _config(request: Request) -> ApiConfig:
    cfg: ApiConfig = request.app.state.alerts_api
    return cfg


Config = Annotated[ApiConfig, Depends(_config)]


async def _session(cfg: Config) -> AsyncIterator[AsyncSession]:
    async with cfg.sessions() as s, s.begin():
        yield s


def _require_token(cfg: Config, authorization: Annotated[str | None, Header()] = None) -> None:
    if not cfg.token:
        raise ApiError(403, "api_token_not_configured", "set CHURNWATCH_ALERTER_API_TOKEN to enable writes")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), cfg.token.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")


Session = Annotated[AsyncSession, Depends(_session)]
Writer = Annotated[None, Depends(_require_token)]
router = APIRouter(prefix="/v1")


@router.get("/alerts")
async def alerts_list(
    s: Session,
    state: AlertState | None = None,
    account_id: str | None = None,
    signal_type: str | None = None,
    severity: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"alerts": await list_alerts(s, AlertFilter(state, account_id, signal_type, severity, limit))}


@router.get("/alerts/{alert_id}")
async def alert_detail(s: Session, alert_id: int) -> dict[str, Any]:
    return await get_alert(s, alert_id)


@router.get("/deliveries")
async def deliveries_list(
    s: Session, status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    return {"deliveries": await list_deliveries(s, status, limit)}


@router.post("/alerts/{alert_id}/ack")
async def ack(s: Session, cfg: Config, _: Writer, alert_id: int) -> dict[str, Any]:
    return await act_on_alert(s, alert_id, Action.ACK, cfg.clock(), cfg.snooze_for, cfg.routing)


@router.post("/alerts/{alert_id}/snooze")
async def snooze(
    s: Session, cfg: Config, _: Writer, alert_id: int, body: SnoozeRequest | None = None
) -> dict[str, Any]:
    span = timedelta(minutes=body.minutes) if body and body.minutes else cfg.snooze_for
    return await act_on_alert(s, alert_id, Action.SNOOZE, cfg.clock(), span, cfg.routing)


@router.post("/alerts/{alert_id}/resolve")
async def resolve(s: Session, cfg: Config, _: Writer, alert_id: int) -> dict[str, Any]:
    return await act_on_alert(s, alert_id, Action.RESOLVE, cfg.clock(), cfg.snooze_for, cfg.routing)


@router.get("/alerts/{alert_id}/{action}", response_class=HTMLResponse)
async def signed_link(s: Session, cfg: Config, alert_id: int, action: Action, exp: int, sig: str) -> HTMLResponse:
    """The one-click link from a message: GET performs the action it was signed for."""
    now = cfg.clock()
    secret = cfg.link_secret
    if action is Action.RESOLVE or not secret or not link_valid(secret, alert_id, action, exp, sig, now):
        return _page(403, "This link is not valid or has expired.")
    alert = await act_on_alert(s, alert_id, action, now, cfg.snooze_for, cfg.routing)
    until = f" until {alert['snoozed_until']}" if action is Action.SNOOZE else ""
    done = "acknowledged" if action is Action.ACK else "snoozed"
    return _page(200, f"Alert {alert_id} ({alert['signal_type']} on {alert['account_id']}) {done}{until}.")


def alerts_api(app: FastAPI, cfg: ApiConfig) -> None:
    app.state.alerts_api = cfg
    app.include_router(router)
    _error_handlers(app)


def _page(status: int, message: str) -> HTMLResponse:
    body = f"<!doctype html><html><body><p>{escape(message)}</p><p>Churnwatch</p></body></html>"
    return HTMLResponse(body, status_code=status)


def _error_handlers(app: FastAPI) -> None:
    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(AlertNotFound)
    async def not_found(_: Request, exc: AlertNotFound) -> JSONResponse:
        return error(404, "alert_not_found", f"no alert {exc.args[0]}")

    @app.exception_handler(TransitionRefused)
    async def refused(_: Request, exc: TransitionRefused) -> JSONResponse:
        return error(409, "transition_refused", str(exc))
