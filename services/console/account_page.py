"""One account's page (health, chart, components, profile, alert history) and the alert buttons, which call the
alerter's lifecycle API with the console's token and come back to the page."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from services.console.auth import SignedIn, check_csrf, signed_in
from services.console.chart import score_history_svg
from services.console.rendering import render
from services.console.upstream import ActionRefused, FilterRejected, UnknownAccount, Upstream

User = Annotated[SignedIn, Depends(signed_in)]
router = APIRouter()
ALERTS_SHOWN = 20  # the most recent alerts get their deliveries fetched


class AlertAction(StrEnum):
    ACK = "ack"
    SNOOZE = "snooze"
    RESOLVE = "resolve"
    OUTCOME = "outcome"  # what happened, told after the alert was resolved (e.g. by a recovery signal)


class Outcome(StrEnum):
    """What happened, asked when an alert is resolved (stored with the alert by the alerter)."""

    SAVED = "saved"
    CHURNED_ANYWAY = "churned_anyway"
    FALSE_ALARM = "false_alarm"
    NOT_ACTIONABLE = "not_actionable"


OUTCOME_LABELS = {
    Outcome.SAVED: "Saved after outreach",
    Outcome.CHURNED_ANYWAY: "Churned anyway",
    Outcome.FALSE_ALARM: "False alarm",
    Outcome.NOT_ACTIONABLE: "Not actionable",
}
DONE = {
    AlertAction.ACK: "acknowledged",
    AlertAction.SNOOZE: "snoozed",
    AlertAction.RESOLVE: "resolved",
    AlertAction.OUTCOME: "given its outcome",
}


def account_path(account_id: str) -> str:
    return "/accounts/" + quote(account_id, safe="")


async def alert_history(alerter: Upstream, account_id: str) -> list[dict[str, Any]]:
    """The account's alerts, newest first, the most recent with their deliveries (notices sent or held)."""
    listed = (await alerter.get("/v1/alerts", [("account_id", account_id), ("limit", 100)]))["alerts"]
    mine = [a for a in listed if a.get("account_id") == account_id]
    detailed = await asyncio.gather(*(alerter.get(f"/v1/alerts/{int(a['id'])}") for a in mine[:ALERTS_SHOWN]))
    return [*detailed, *mine[ALERTS_SHOWN:]]


@router.get("/accounts/{account_id}")
async def account_page(request: Request, user: User, account_id: str) -> Response:
    scorer: Upstream = request.app.state.scorer
    alerter: Upstream = request.app.state.alerter
    health, alerts = await asyncio.gather(
        scorer.get(f"/v1/accounts/{quote(account_id, safe='')}/health", [("history_days", 90)]),
        alert_history(alerter, account_id),
    )
    chart = await asyncio.to_thread(score_history_svg, health.get("history") or [])
    return render(
        request,
        "account.html",
        user=user,
        account_id=account_id,
        health=health,
        profile=health.get("profile") or {},
        chart=chart,
        alerts=alerts,
        outcomes=OUTCOME_LABELS,
        account_url=account_path(account_id),
    )


@router.post("/alerts/{alert_id}/{action}", dependencies=[Depends(check_csrf)])
async def act_on_alert(
    request: Request,
    user: User,
    alert_id: int,
    action: AlertAction,
    account_id: Annotated[str, Form(min_length=1, max_length=200)],
    outcome: Annotated[str | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
    minutes: Annotated[float | None, Form(gt=0, le=60 * 24 * 90)] = None,
) -> Response:
    alerter: Upstream = request.app.state.alerter
    body: dict[str, Any] | None = None
    if action in (AlertAction.RESOLVE, AlertAction.OUTCOME):
        if outcome not in {o.value for o in Outcome}:
            raise FilterRejected("outcome", f"say what happened: one of {', '.join(o.value for o in Outcome)}")
        body = {"outcome": outcome, "by": user.email} | ({"note": note.strip()} if note.strip() else {})
    elif action is AlertAction.SNOOZE and minutes:
        body = {"minutes": minutes}
    try:
        alert = await alerter.post(f"/v1/alerts/{alert_id}/{action.value}", body)
    except ActionRefused as exc:
        request.session["flash"] = f"Alert {alert_id}: {exc}"
    except UnknownAccount:
        request.session["flash"] = f"Alert {alert_id} does not exist."
    else:
        request.session["flash"] = f"Alert {alert_id} ({alert.get('signal_type')}) {DONE[action]} by {user.name}."
    return RedirectResponse(account_path(account_id), status_code=303)
