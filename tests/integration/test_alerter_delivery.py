"""The alerter as a real process: signals produced to real Kafka, alerts in real PostgreSQL, delivered to a
Slack-contract HTTP server and an aiosmtpd SMTP server that go down and come back."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from services.demo.processes import ServiceProcess
from shared.signals import RiskSignal
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.slack_server import ScriptedAnswer, SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

TOKEN = "test-token-0123456789abcdef"
LINK_SECRET = "link-secret-0123456789abcdef"


def risk_signal(account_id: str, **kw: Any) -> RiskSignal:
    account = {
        "account_id": account_id,
        "name": f"Account {account_id}",
        "arr": 50_000,
        "touch_tier": "high",
        "csm": {"name": "Ana", "email": "ana@csm.example.com", "slack": "U0ANA"},
        "support_route": {"email": "help@support.example.com", "slack": "C0SUP"},
    }
    account.update(kw.pop("account", {}))
    base: dict[str, Any] = {
        "signal_id": f"usage_drop:{account_id}:1",
        "account_id": account_id,
        "signal_type": "usage_drop",
        "severity": "warning",
        "audience": "csm",
        "explanation": "logins -60% vs the 28 days before",
        "score_before": 78,
        "score_after": 52,
        "band_before": "green",
        "band_after": "yellow",
        "evidence": {"logins_7d": 4, "logins_baseline_7d": 10},
        "occurred_at": datetime.now(UTC).isoformat(),
        "account": account,
    }
    base.update(kw)
    return RiskSignal.model_validate(base)


@pytest.fixture
async def produce(sandbox: Sandbox) -> AsyncIterator[Callable[..., Any]]:
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()

    async def send(*signals: RiskSignal) -> None:
        for s in signals:
            await producer.send_and_wait(
                sandbox.settings.topics.signals, s.model_dump_json().encode(), key=s.account_id.encode()
            )

    try:
        yield send
    finally:
        await producer.stop()


def alerter_env(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, port: int, **extra: str
) -> dict[str, str]:
    return {
        **sandbox.env,
        "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url_for("default"),
        "CHURNWATCH_SLACK_WEBHOOKS": f'{{"csm": "{slack.url_for("csm")}", "support": "{slack.url_for("support")}"}}',
        "CHURNWATCH_SMTP_HOST": "127.0.0.1",
        "CHURNWATCH_SMTP_PORT": str(smtp.port),
        "CHURNWATCH_DELIVERY_BACKOFF_SECONDS": "0.2",
        "CHURNWATCH_DELIVERY_BACKOFF_CAP_SECONDS": "1",
        "CHURNWATCH_CLOCK_INTERVAL_SECONDS": "0.5",
        "CHURNWATCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CHURNWATCH_LINK_SECRET": LINK_SECRET,
        "CHURNWATCH_ALERTER_API_TOKEN": TOKEN,
        "CHURNWATCH_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def running_alerter(env: dict[str, str], port: int) -> Iterator[ServiceProcess]:
    proc = ServiceProcess("alerter", env, port).start()
    try:
        proc.wait_ready(timeout=60)
        yield proc
    finally:
        proc.stop()


async def delivery_counts(sandbox: Sandbox) -> dict[str, int]:
    async with sandbox.engine.connect() as conn:
        rows = await conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        return {r[0]: int(r[1]) for r in rows}


async def all_sent(sandbox: Sandbox, expected: int) -> bool:
    counts = await delivery_counts(sandbox)
    return counts.get("sent", 0) >= expected and counts.get("pending", 0) == 0


def accounts_in(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m for msg in messages for m in re.findall(r"\((acct-[\w-]+)\)", msg["text"]))


async def test_slack_down_then_back_delivers_each_alert_exactly_once(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    env = alerter_env(sandbox, slack, smtp, port, CHURNWATCH_EMAIL_ENABLED="false")
    slack.script.append(ScriptedAnswer(429, "rate_limited", {"Retry-After": "1"}))
    slack.down = ScriptedAnswer(500, "internal_error")
    with running_alerter(env, port):
        accounts = [f"acct-down-{i}" for i in range(5)]
        await produce(*(risk_signal(a) for a in accounts))
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
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"http://127.0.0.1:{port}/v1/deliveries", params={"status": "dead"})
    assert resp.status_code == 200, resp.text
    found: list[Any] = resp.json()["deliveries"]
    return [d for d in found if "404" in (d["last_error"] or "")]


def test_a_bad_rules_file_stops_start_up_naming_the_line(tmp_path: Any, sandbox: Sandbox) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text("routes:\n  - name: x\n    match: {tier: [enormous]}\n    notify: [{slack: a}]\n")
    env = {**sandbox.env, "CHURNWATCH_ROUTING_PATH": str(rules)}
    proc = ServiceProcess("alerter", env, free_port(), stdout=subprocess.PIPE).start()
    assert proc.proc is not None
    out, _ = proc.proc.communicate(timeout=60)
    assert proc.proc.returncode != 0
    assert f"{rules}:3: routes.0.match.tier.0" in out
