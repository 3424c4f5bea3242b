"""Grouping through the real alerter: one evaluation's five signals for one account are one Slack message and
one email per destination, naming every reason; later changes within group_interval join the next message;
the group's signed link acknowledges every alert of the group, each alert still tracked on its own."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import Sandbox
from tests.support.alerter import alerter_env, all_sent, api, risk_signal, running_alerter
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

ACCOUNT = "acct-group"
FIVE = {  # signal type -> severity: what a declining account raises in one evaluation
    "usage_drop": "warning",
    "escalation": "warning",
    "band_change": "warning",
    "score_drop": "info",
    "renewal_risk": "warning",
}
REASONS = [kind.replace("_", " ") for kind in FIVE]
GROUPING = {"CHURNWATCH_GROUP_WAIT_SECONDS": "2", "CHURNWATCH_GROUP_INTERVAL_SECONDS": "4"}


async def test_five_signals_of_one_account_are_one_message_per_destination(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    with running_alerter(alerter_env(sandbox, slack, smtp, port, **GROUPING), port):
        await produce(
            *(risk_signal(ACCOUNT, signal_id=f"{k}:{ACCOUNT}", signal_type=k, severity=s) for k, s in FIVE.items())
        )
        await await_until(lambda: all_sent(sandbox, 2 * len(FIVE)), within=60, what="ten deliveries sent")
        messages, mails = slack.requests("csm"), _mails(smtp)
        assert len(messages) == 1, [m.payload["text"] for m in messages]
        assert len(mails) == 1, [m["Subject"] for m in mails]
        first = messages[0].payload
        blocks = str(first["blocks"])
        for kind, severity in FIVE.items():
            reason = kind.replace("_", " ")
            assert f"{severity.capitalize()}: {reason} on Account {ACCOUNT}" in first["text"], first["text"]
            assert reason in first["blocks"][0]["text"]["text"]  # the headline names every reason
            assert reason in str(mails[0]["Subject"]) and reason in _body(mails[0])
        assert first["text"].startswith("<@U0ANA>") and "(worst warning)" in first["text"]
        assert len([b for b in first["blocks"] if b["type"] == "section"]) == len(FIVE) + 1  # one per signal + links

        listed = (await api("GET", f"{base}/alerts", params={"account_id": ACCOUNT})).json()["alerts"]
        assert sorted(a["signal_type"] for a in listed) == sorted(FIVE)  # each alert tracked on its own
        for alert in listed:
            detail = (await api("GET", f"{base}/alerts/{alert['id']}")).json()
            assert sorted((d["channel"], d["status"]) for d in detail["deliveries"]) == [
                ("email", "sent"),
                ("slack", "sent"),
            ]
            assert [n["notice"] for n in detail["notices"]] == ["new"]

        # Later changes to the account within group_interval wait for its end and go out together.
        await produce(
            risk_signal(ACCOUNT, signal_id="usage_drop:worse", severity="critical"),
            risk_signal(ACCOUNT, signal_id="inactivity:new", signal_type="inactivity", severity="info"),
        )
        await await_until(lambda: all_sent(sandbox, 2 * len(FIVE) + 4), within=60, what="the follow-up sent")
        messages = slack.requests("csm")
        assert len(messages) == 2 and len(_mails(smtp)) == 2, [m.payload["text"] for m in messages]
        follow_up = messages[1].payload["text"]
        assert "Escalated: usage drop" in follow_up and "Info: inactivity" in follow_up, follow_up
        assert messages[1].at - messages[0].at >= 3.5  # the 4 s group_interval, less the send's own time

        # One link acknowledges every alert of the first message.
        link = re.search(r"<(http[^|>]+/alert-groups/[^|>]+/ack\?[^|>]+)\|Acknowledge all>", str(first["blocks"]))
        assert link is not None, blocks
        page = await api("GET", link.group(1).replace("&amp;", "&"))
        assert page.status_code == 200, page.text
        tampered = await api("GET", link.group(1).replace("&amp;", "&").replace("sig=", "sig=0"))
        assert tampered.status_code == 403
        states = {
            a["signal_type"]: a["state"]
            for a in (await api("GET", f"{base}/alerts", params={"account_id": ACCOUNT})).json()["alerts"]
        }
        assert states == {**dict.fromkeys(FIVE, "acknowledged"), "inactivity": "open"}, states


def _mails(smtp: SmtpServer) -> list[Any]:
    return [m for m in smtp.messages() if m["To"] == "ana@csm.example.com"]


def _body(mail: Any) -> str:
    return "\n".join(part.get_content() for part in mail.walk() if part.get_content_type() == "text/plain")
