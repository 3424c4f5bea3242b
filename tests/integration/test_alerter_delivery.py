"""The alerter as a real process: signals produced to real Kafka, alerts in real PostgreSQL, delivered to a
Slack-contract HTTP server and an aiosmtpd SMTP server that go down and come back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.demo.processes import ServiceProcess
from tests.integration.conftest import Sandbox
from tests.support.alerter import accounts_in, alerter_env, all_sent, delivery_counts, risk_signal, running_alerter
from tests.support.polling import await_until
from tests.support.read_access import READER
from tests.support.slack_server import ScriptedAnswer, SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration


async def test_slack_down_then_back_delivers_each_alert_exactly_once(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    env = alerter_env(sandbox, slack, smtp, port, CHURNWATCH_EMAIL_ENABLED="false")
    slack.script.append(ScriptedAnswer(429, "rate_limited", {"Retry-After": "1"}))
    slack.down = ScriptedAnswer(500, "internal_error")
    with running_alerter(env, port):
        accounts = [f"acct-down-{i}" for i in range(5)]
        # one signal twice in a row: most likely in one batch, which must still count it once
        await produce(*(risk_signal(a) for a in accounts), risk_signal(accounts[2]))
        await await_until(lambda: _ge(lambda: slack.attempts, 10), within=60, what="Slack retried while down")
        # while Slack is down: the same signal again, and a second one of the same severity, change nothing
        await produce(risk_signal(accounts[0]), risk_signal(accounts[1], signal_id="usage_drop:again"))
        slack.down = None
        await await_until(lambda: all_sent(sandbox, 5), within=60, what="every delivery sent once Slack is back")
        assert accounts_in(slack.messages("csm")) == sorted(accounts)
        assert all(m["text"].startswith("<@U0ANA>") for m in slack.messages("csm"))
        counts = await delivery_counts(sandbox)
        assert counts == {"sent": 5}, counts
        metrics = await get_text(f"http://127.0.0.1:{port}/metrics")
        assert 'churnwatch_alerter_deliveries_total{channel="slack",outcome="retry"}' in metrics
        assert "churnwatch_alerter_outbox_depth" in metrics


async def get_text(url: str) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(url)).text


async def _ge(value: Callable[[], int], n: int) -> bool:
    return value() >= n


async def test_smtp_down_is_retried_then_delivered_once(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    smtp.refuse = True
    with running_alerter(alerter_env(sandbox, slack, smtp, port), port):
        await produce(risk_signal("acct-mail"))
        await await_until(lambda: _ge(lambda: smtp.refused, 2), within=60, what="SMTP refusals being retried")
        smtp.refuse = False
        await await_until(lambda: all_sent(sandbox, 2), within=60, what="the email delivered after SMTP is back")
    mails = [m for m in smtp.messages() if m["To"] == "ana@csm.example.com"]
    assert len(mails) == 1
    assert mails[0].is_multipart() and mails[0]["Message-ID"].startswith("<delivery-")


async def test_hostile_account_names_arrive_inert(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    hostile = "*bold* <!channel> <script>alert(1)</script>"
    with running_alerter(alerter_env(sandbox, slack, smtp, port), port):
        await produce(risk_signal("acct-evil", account={"name": hostile}, explanation=f"because {hostile}"))
        await await_until(lambda: all_sent(sandbox, 2), within=60, what="the hostile alert delivered")
    raw = slack.requests("csm")[0].raw.decode()
    assert "<!channel>" not in raw and "<script>" not in raw and "&lt;!channel&gt;" in raw
    mail = next(m for m in smtp.messages() if m["To"] == "ana@csm.example.com")
    html_part = mail.get_body(("html",))
    assert html_part is not None
    body = html_part.get_content()
    assert "<script>" not in body and "&lt;script&gt;" in body


async def test_gone_webhook_is_dead_lettered_and_visible(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    slack.down = ScriptedAnswer(404, "no_service")
    with running_alerter(alerter_env(sandbox, slack, smtp, port, CHURNWATCH_EMAIL_ENABLED="false"), port):
        await produce(risk_signal("acct-gone"))
        await await_until(lambda: _dead(port), within=60, what="a dead delivery in the API")
        metrics = await get_text(f"http://127.0.0.1:{port}/metrics")
        assert 'churnwatch_alerter_deliveries_total{channel="slack",outcome="dead"} 1.0' in metrics


async def _dead(port: int) -> list[Any]:
    async with httpx.AsyncClient(headers=READER) as client:
        resp = await client.get(f"http://127.0.0.1:{port}/v1/deliveries", params={"status": "dead"})
    assert resp.status_code == 200, resp.text
    found: list[Any] = resp.json()["deliveries"]
    return [d for d in found if "404" in (d["last_error"] or "")]


def test_a_bad_rules_file_stops_start_up_naming_the_line(tmp_path: Any, sandbox: Sandbox) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text("routes:\n  - name: x\n    match: {tier: [enormous]}\n    notify: [{slack: a}]\n")
    env = {**sandbox.env, "CHURNWATCH_ROUTING_PATH": str(rules)}
    returncode, out = ServiceProcess("alerter", env, free_port()).refused_start()
    assert returncode != 0
    assert f"{rules}:3: routes.0.match.tier.0" in out
