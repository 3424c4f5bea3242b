"""Inhibition through the real alerter: a critical alert holds back its account's warnings until it ends.

Two accounts, each with a critical usage drop and then a warning about inactivity. The warnings are recorded
(the API shows what holds them back) without an outbox row; the critical alert of one account ends with a
recovery signal from Kafka, the other's is resolved through the API, which also sends a "resolved" notice.
Either way the held warning is then sent exactly once. Last, the reminder scheduler releases a stale hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.conftest import Sandbox
from tests.support.alerter import TOKEN, alerter_env, all_sent, api, risk_signal, running_alerter
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

ACCOUNTS = ("acct-inh-signal", "acct-inh-api")


async def test_critical_alert_holds_back_warnings_until_it_ends(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    with running_alerter(alerter_env(sandbox, slack, smtp, port, CHURNWATCH_EMAIL_ENABLED="false"), port):
        await produce(*(risk_signal(a, signal_id=f"usage_drop:{a}", severity="critical") for a in ACCOUNTS))
        await await_until(lambda: _said(slack, "Critical: usage drop", 2), within=60, what="both critical alerts")
        await produce(
            *(risk_signal(a, signal_id=f"inactivity:{a}", signal_type="inactivity") for a in ACCOUNTS),
            risk_signal("acct-inh-free", signal_id="inactivity:free", signal_type="inactivity"),
        )
        held = [await _wait_held(base, a) for a in ACCOUNTS]
        critical = {a["account_id"]: a for a in await _alerts(base, signal_type="usage_drop")}
        for warning in held:
            assert warning["inhibited_by"] == critical[warning["account_id"]]["id"]
            assert warning["held_notice"] == "new" and warning["last_notified_at"] is None
            assert (await api("GET", f"{base}/alerts/{warning['id']}")).json()["deliveries"] == []
        await await_until(lambda: _said(slack, "inactivity on Account acct-inh-free", 1), within=60, what="control")

        await produce(risk_signal(ACCOUNTS[0], signal_id="usage_drop:back", recovered=True, severity="info"))
        auth = {"Authorization": f"Bearer {TOKEN}"}
        resolved = await api("POST", f"{base}/alerts/{critical[ACCOUNTS[1]]['id']}/resolve", headers=auth)
        assert resolved.status_code == 200, resolved.text

        released = "Warning: inactivity on Account acct-inh-"  # the control account's warning is one of them
        await await_until(lambda: _said(slack, released, 3), within=60, what="the held warnings released")
        await await_until(lambda: _said(slack, "Resolved: usage drop", 2), within=60, what="both resolved notices")
        await await_until(lambda: all_sent(sandbox, 7), within=60, what="the outbox drained")
        for warning in await _alerts(base, signal_type="inactivity"):
            assert (warning["inhibited_by"], warning["held_notice"]) == (None, None), warning
            assert warning["last_notified_at"] is not None

        # What a hold committed concurrently with its critical alert's resolve leaves: the scheduler releases it.
        async with sandbox.engine.begin() as conn:
            await conn.execute(
                text("UPDATE alerts SET inhibited_by = :c, held_notice = 'reminder' WHERE account_id = :a"),
                {"c": critical[ACCOUNTS[0]]["id"], "a": "acct-inh-free"},
            )
        await await_until(
            lambda: _said(slack, "Reminder: inactivity on Account acct-inh-free", 1), within=60, what="swept"
        )
        await await_until(lambda: all_sent(sandbox, 8), within=60, what="the outbox drained again")
        assert not await _held_warning(base, "acct-inh-free")
    for account in ACCOUNTS:
        said = [m["text"] for m in slack.messages("csm") if f"({account})" in m["text"]]
        kinds = sorted(k for t in said for k in re.findall(r"(Critical|Resolved|Warning): ", t))
        assert kinds == ["Critical", "Resolved", "Warning"], said


async def _said(slack: SlackWebhookServer, words: str, n: int) -> bool:
    return len([m for m in slack.messages("csm") if words in m["text"]]) >= n


async def _alerts(base: str, **params: str) -> list[dict[str, Any]]:
    resp = await api("GET", f"{base}/alerts", params=params)
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["alerts"]
    return found


async def _wait_held(base: str, account_id: str) -> dict[str, Any]:
    async def held() -> dict[str, Any] | None:
        return await _held_warning(base, account_id)

    found = await await_until(held, within=60, what=f"the held warning of {account_id}")
    assert found is not None
    return found


async def _held_warning(base: str, account_id: str) -> dict[str, Any] | None:
    found = await _alerts(base, account_id=account_id, signal_type="inactivity")
    return found[0] if found and found[0]["inhibited_by"] else None
