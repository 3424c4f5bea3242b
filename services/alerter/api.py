"""The alert API: list and inspect alerts, ack / snooze / resolve them (with an outcome), and the signed links.

Write endpoints take ``Authorization: Bearer <CHURNWATCH_ALERTER_API_TOKEN>``; with no token configured they
are refused (403), so an alerter is never writable by accident. The signed links need no token: the HMAC
signature is the credential for that one action on that one alert (or on every alert of one grouped message)
until the link expires. Every change goes through core.decide_change and store.apply_effects.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter import store
from services.alerter.changes import Change, NoticeRouting, OutcomeRecorded, PersonActed
from services.alerter.core import decide_change
from services.alerter.grouping import GroupTiming
from services.alerter.lifecycle import Action, AlertState, Outcome, TransitionRefused
from services.alerter.links import group_link_valid, link_valid
from services.alerter.store import AlertFilter, AlertNotFound
from shared.api_keys import Scope
from shared.key_auth import require_scope


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
    routing: NoticeRouting  # where a resolve's notice goes; a critical's resolve or snooze releases its holds
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    timing: GroupTiming = field(default_factory=GroupTiming)


class SnoozeRequest(BaseModel):
    minutes: Annotated[float, Field(gt=0, le=60 * 24 * 90)] | None = None


class OutcomeRequest(BaseModel):
    """What became of the account: given on resolve (optional) or afterwards (required)."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: Annotated[str, Field(max_length=2000)] | None = None
    by: Annotated[str, Field(max_length=200)] | None = None


class ResolveRequest(OutcomeRequest):
    outcome: Outcome | None = None  # type: ignore[assignment]


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
# Reads (alerts, deliveries: account names, CSM emails, message text) need a key with the read scope or the
# console's service token, checked by the one shared key check; the signed one-click links carry their own proof.
Reader = Depends(require_scope(Scope.READ))
router = APIRouter(prefix="/v1")


async def change_alert(session: AsyncSession, alert_id: int, change: Change, cfg: ApiConfig) -> dict[str, Any]:
    """A person's change to one alert through the core; raises AlertNotFound or TransitionRefused."""
    account_id = await store.account_of(session, alert_id)
    if account_id is None:
        raise AlertNotFound(alert_id)
    now = cfg.clock()
    effects = decide_change(change, await store.account_alerts(session, account_id), cfg.routing, now)
    await store.apply_effects(session, effects, now, cfg.timing)
    return await store.get_alert(session, alert_id)


@router.get("/alerts", dependencies=[Reader])
async def alerts_list(
    s: Session,
    state: AlertState | None = None,
    account_id: Annotated[list[str] | None, Query()] = None,
    signal_type: str | None = None,
    severity: str | None = None,
    since: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    f = AlertFilter(state, tuple(account_id or ()), signal_type, severity, since, limit)
    return {"alerts": await store.list_alerts(s, f)}


@router.get("/alerts/{alert_id}", dependencies=[Reader])
async def alert_detail(s: Session, alert_id: int) -> dict[str, Any]:
    return await store.get_alert(s, alert_id)


@router.get("/deliveries", dependencies=[Reader])
async def deliveries_list(
    s: Session, status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    return {"deliveries": await store.list_deliveries(s, status, limit)}


@router.post("/alerts/{alert_id}/ack")
async def ack(s: Session, cfg: Config, _: Writer, alert_id: int) -> dict[str, Any]:
    return await change_alert(s, alert_id, PersonActed(alert_id, Action.ACK, cfg.snooze_for), cfg)


@router.post("/alerts/{alert_id}/snooze")
async def snooze(
    s: Session, cfg: Config, _: Writer, alert_id: int, body: SnoozeRequest | None = None
) -> dict[str, Any]:
    span = timedelta(minutes=body.minutes) if body and body.minutes else cfg.snooze_for
    return await change_alert(s, alert_id, PersonActed(alert_id, Action.SNOOZE, span), cfg)


@router.post("/alerts/{alert_id}/resolve")
async def resolve(
    s: Session, cfg: Config, _: Writer, alert_id: int, body: ResolveRequest | None = None
) -> dict[str, Any]:
    b = body or ResolveRequest()
    change = PersonActed(alert_id, Action.RESOLVE, cfg.snooze_for, b.outcome, b.note, b.by)
    return await change_alert(s, alert_id, change, cfg)


@router.post("/alerts/{alert_id}/outcome")
async def outcome(s: Session, cfg: Config, _: Writer, alert_id: int, body: OutcomeRequest) -> dict[str, Any]:
    """Record what became of the account on an alert already resolved (409 otherwise)."""
    return await change_alert(s, alert_id, OutcomeRecorded(alert_id, body.outcome, body.note, body.by), cfg)


@router.get("/alerts/{alert_id}/{action}", response_class=HTMLResponse)
async def signed_link(s: Session, cfg: Config, alert_id: int, action: Action, exp: int, sig: str) -> HTMLResponse:
    """The one-click link from a message: GET performs the action it was signed for."""
    now = cfg.clock()
    secret = cfg.link_secret
    if action is Action.RESOLVE or not secret or not link_valid(secret, alert_id, action, exp, sig, now):
        return _page(403, "This link is not valid or has expired.")
    alert = await change_alert(s, alert_id, PersonActed(alert_id, action, cfg.snooze_for), cfg)
    until = f" until {alert['snoozed_until']}" if action is Action.SNOOZE else ""
    done = "acknowledged" if action is Action.ACK else "snoozed"
    return _page(200, f"Alert {alert_id} ({alert['signal_type']} on {alert['account_id']}) {done}{until}.")


@router.get("/alert-groups/{alert_ids}/{action}", response_class=HTMLResponse)
async def signed_group_link(
    s: Session, cfg: Config, alert_ids: str, action: Action, exp: int, sig: str
) -> HTMLResponse:
    """The "acknowledge all" / "snooze all" link of a grouped message: the action on each of its alerts
    that still allows it (one resolved meanwhile is left as it is)."""
    now = cfg.clock()
    ids = [int(i) for i in alert_ids.split(",") if i.isdigit()]
    secret = cfg.link_secret
    if action is Action.RESOLVE or not secret or not ids or not group_link_valid(secret, ids, action, exp, sig, now):
        return _page(403, "This link is not valid or has expired.")
    done = []
    for alert_id in ids:
        try:
            await change_alert(s, alert_id, PersonActed(alert_id, action, cfg.snooze_for), cfg)
            done.append(str(alert_id))
        except (AlertNotFound, TransitionRefused):
            continue
    verb = "acknowledged" if action is Action.ACK else "snoozed"
    return _page(200, f"Alerts {', '.join(done) or 'none'} {verb}.")


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
