"""Alert lifecycle through the real alerter: signed links, the API, recovery notices, reminders, digests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import Sandbox
from tests.support.alerter import (
    TOKEN,
    alerter_env,
    all_sent,
    api,
    risk_signal,
    running_alerter,
)
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration


async def test_ack_link_api_and_recovery(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = alerter_env(sandbox, slack, smtp, port, CHURNWATCH_EMAIL_ENABLED="false")
    with running_alerter(env, port):
        await produce(risk_signal("acct-life"), risk_signal("acct-snooze"))
        await await_until(lambda: all_sent(sandbox, 2), within=60, what="two alerts delivered")
        first = next(m for m in slack.messages("csm") if "acct-life" in m["text"])
        ack_url = re.search(r"<(http[^|>]+/ack\?[^|>]+)\|Acknowledge>", str(first["blocks"]))
        assert ack_url is not None, first
        link = ack_url.group(1).replace("&amp;", "&")
        assert (await api("GET", link.replace("sig=", "sig=0"))).status_code == 403  # tampered
        page = await api("GET", link)
        assert page.status_code == 200 and "acknowledged" in page.text
        alerts = (await api("GET", f"{base}/v1/alerts", params={"account_id": "acct-life"})).json()["alerts"]
        assert [a["state"] for a in alerts] == ["acknowledged"]

        other = (await api("GET", f"{base}/v1/alerts", params={"account_id": "acct-snooze"})).json()["alerts"][0]
        assert (await api("POST", f"{base}/v1/alerts/{other['id']}/snooze")).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        snoozed = await api("POST", f"{base}/v1/alerts/{other['id']}/snooze", headers=auth, json={"minutes": 60})
        assert snoozed.status_code == 200 and snoozed.json()["state"] == "snoozed"
        assert (await api("POST", f"{base}/v1/alerts/999999/ack", headers=auth)).status_code == 404

        recovery = risk_signal("acct-life", signal_id="usage_drop:acct-life:recovered", recovered=True)
        await produce(recovery)
        resolved = await await_until(
            lambda: _messages_with(slack, "csm", "Resolved: usage drop on Account acct-life"),
            within=60,
            what="a resolved notice in the same channel",
        )
        assert len(resolved) == 1
        states = (await api("GET", f"{base}/v1/alerts", params={"state": "resolved"})).json()["alerts"]
        assert [a["account_id"] for a in states] == ["acct-life"]
        refused = await api("POST", f"{base}/v1/alerts/{states[0]['id']}/ack", headers=auth)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "transition_refused"


async def _messages_with(slack: SlackWebhookServer, channel: str, words: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if words in m["text"]]


async def test_reminders_repeat_until_acknowledged_and_escalation_renotifies(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    env = alerter_env(
        sandbox, slack, smtp, port, CHURNWATCH_EMAIL_ENABLED="false", CHURNWATCH_REPEAT_INTERVAL_SECONDS="1"
    )
    with running_alerter(env, port):
        await produce(risk_signal("acct-remind"))
        reminders = await await_until(
            lambda: _messages_with(slack, "csm", "Reminder: usage drop"), within=60, what="a reminder"
        )
        assert reminders
        alert = (await api("GET", f"http://127.0.0.1:{port}/v1/alerts")).json()["alerts"][0]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        await api("POST", f"http://127.0.0.1:{port}/v1/alerts/{alert['id']}/ack", headers=auth)
        await produce(risk_signal("acct-remind", signal_id="usage_drop:critical", severity="critical"))
        await await_until(
            lambda: _messages_with(slack, "csm", "Escalated: usage drop"), within=60, what="an escalation notice"
        )
        detail = (await api("GET", f"http://127.0.0.1:{port}/v1/alerts/{alert['id']}")).json()
        assert detail["state"] == "acknowledged" and detail["severity"] == "critical"
        assert detail["reminders_sent"] >= 1


async def test_tech_touch_accounts_get_one_digest_email(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    env = alerter_env(
        sandbox, slack, smtp, port, CHURNWATCH_DIGEST_INTERVAL_SECONDS="3", CHURNWATCH_DIGEST_OFFSET_SECONDS="0"
    )
    tech = {"touch_tier": "tech", "csm": {"email": "pool@csm.example.com"}}
    with running_alerter(env, port):
        await produce(
            risk_signal("acct-tech-1", account=tech),
            risk_signal("acct-tech-2", account=tech),
            risk_signal("acct-tech-2", signal_id="inactivity:2", signal_type="inactivity", account=tech),
        )
        digests = await await_until(lambda: _mails_to(smtp, "pool@csm.example.com"), within=60, what="the digest email")
        await await_until(lambda: all_sent(sandbox, 1), within=30, what="the digest delivery recorded")
    assert len(digests) == 1, [m["Subject"] for m in digests]
    assert "3 alert notices on 2 accounts" in digests[0]["Subject"]
    assert slack.messages() == []  # tech touch: no person's Slack


async def _mails_to(smtp: SmtpServer, address: str) -> list[Any]:
    return [m for m in smtp.messages() if m["To"] == address]
