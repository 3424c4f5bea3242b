"""The alert API as the console reads and writes it: several accounts at once, since, notices and deliveries
of one alert, resolve with an outcome, an outcome recorded afterwards, and refusals that name the field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import Sandbox
from tests.support.alerter import TOKEN, alerter_env, all_sent, api, risk_signal, running_alerter
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_lists_details_and_outcomes(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    started = datetime.now(UTC) - timedelta(seconds=1)
    with running_alerter(alerter_env(sandbox, slack, smtp, port), port):
        await produce(*(risk_signal(a) for a in ("acct-api-1", "acct-api-2", "acct-api-3")))
        await await_until(lambda: all_sent(sandbox, 6), within=60, what="three alerts delivered")
        two = await api("GET", f"{base}/alerts", params=[("account_id", "acct-api-1"), ("account_id", "acct-api-2")])
        listed = two.json()["alerts"]
        assert sorted(a["account_id"] for a in listed) == ["acct-api-1", "acct-api-2"]
        for key in ("id", "account_id", "signal_type", "severity", "state", "created_at", "updated_at", "outcome"):
            assert key in listed[0], listed[0]
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert (await api("GET", f"{base}/alerts", params={"since": later})).json()["alerts"] == []
        since = (await api("GET", f"{base}/alerts", params={"since": started.isoformat()})).json()["alerts"]
        assert len(since) == 3
        for path in ("/alerts", f"/alerts/{listed[0]['id']}", "/deliveries"):  # reads need a read credential
            assert (await api("GET", f"{base}{path}", headers={})).status_code == 401, path
            assert (await api("GET", f"{base}{path}", headers=AUTH)).status_code == 401, path  # the write token

        alert_id = next(a["id"] for a in listed if a["account_id"] == "acct-api-1")
        detail = (await api("GET", f"{base}/alerts/{alert_id}")).json()
        assert [n["notice"] for n in detail["notices"]] == ["new"]
        for d in detail["deliveries"]:
            assert {"destination", "channel", "status", "attempts", "sent_at", "error", "cause"} <= set(d), d
            assert d["status"] == "sent" and d["signal_id"] == d["cause"]  # the old key, for one version

        bad = await api("POST", f"{base}/alerts/{alert_id}/resolve", headers=AUTH, json={"outcome": "won"})
        assert bad.status_code == 422 and "outcome" in str(bad.json()), bad.text
        long_note = {"outcome": "saved", "note": "x" * 2001}
        assert (await api("POST", f"{base}/alerts/{alert_id}/resolve", headers=AUTH, json=long_note)).status_code == 422
        early = await api("POST", f"{base}/alerts/{alert_id}/outcome", headers=AUTH, json={"outcome": "saved"})
        assert early.status_code == 409, early.text  # not resolved yet

        body = {"outcome": "saved", "note": "renewed after an exec call"}
        done = await api("POST", f"{base}/alerts/{alert_id}/resolve", headers=AUTH, json=body)
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["outcome"], done.json()["outcome_note"]) == (
            "resolved",
            "saved",
            "renewed after an exec call",
        )
        plain = next(a["id"] for a in listed if a["account_id"] == "acct-api-2")
        assert (await api("POST", f"{base}/alerts/{plain}/resolve", headers=AUTH)).status_code == 200  # no body
        told = await api("POST", f"{base}/alerts/{plain}/outcome", headers=AUTH, json={"outcome": "churned_anyway"})
        assert told.status_code == 200 and told.json()["outcome"] == "churned_anyway", told.text
        assert (await api("POST", f"{base}/alerts/{plain}/outcome", json={"outcome": "saved"})).status_code == 401
        resolved = (await api("GET", f"{base}/alerts", params={"state": "resolved"})).json()["alerts"]
        assert {(a["account_id"], a["outcome"]) for a in resolved} == {
            ("acct-api-1", "saved"),
            ("acct-api-2", "churned_anyway"),
        }
