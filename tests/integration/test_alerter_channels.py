"""What the alerter puts on the wire: Slack sends paced per webhook, and the signed generic JSON webhook."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.alerter.outgoing import webhook_signature
from tests.integration.conftest import Sandbox
from tests.support.alerter import alerter_env, all_sent, risk_signal, running_alerter
from tests.support.polling import await_until
from tests.support.slack_server import ScriptedAnswer, SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec-0123456789abcdef"
PACING = 0.2  # seconds between two sends to one webhook (Slack's own is about 1 s; small keeps the test fast)


async def test_a_burst_is_paced_per_webhook_and_never_meets_a_429(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    slack.rate_limit_seconds = PACING * 0.75  # the server answers 429 to anything faster, with some slack for jitter
    env = alerter_env(
        sandbox,
        slack,
        smtp,
        port,
        CHURNWATCH_EMAIL_ENABLED="false",
        CHURNWATCH_DELIVERY_WORKERS="3",
        CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS=str(PACING),
    )
    accounts = [f"acct-burst-{i}" for i in range(8)]
    with running_alerter(env, port):
        await produce(*(risk_signal(a) for a in accounts))
        await await_until(lambda: all_sent(sandbox, len(accounts)), within=60, what="the burst delivered")
    arrivals = sorted(r.at for r in slack.requests("csm"))
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == len(accounts)
    assert slack.rate_limited == 0, f"{slack.rate_limited} sends hit 429; gaps {gaps}"
    assert min(gaps) >= PACING - 0.05, gaps


async def test_signed_json_webhook_500_then_200_delivers_once(
    tmp_path: Path, sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    rules = tmp_path / "routing.yaml"
    rules.write_text(
        "routes:\n  - name: crm\n    match: {signal_type: [usage_drop]}\n    notify: [{webhook: crm}]\n"
        "default:\n  notify: [{slack: default}]\n"
    )
    port = free_port()
    env = alerter_env(
        sandbox,
        slack,
        smtp,
        port,
        CHURNWATCH_EMAIL_ENABLED="false",
        CHURNWATCH_ROUTING_PATH=str(rules),
        CHURNWATCH_WEBHOOKS=json.dumps({"crm": slack.hook_url("crm")}),
        CHURNWATCH_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    slack.script.append(ScriptedAnswer(500, "internal_error"))
    with running_alerter(env, port):
        await produce(risk_signal("acct-hook"))
        await await_until(lambda: all_sent(sandbox, 1), within=60, what="the webhook delivered after a 500")
    async with sandbox.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, channel, attempts FROM deliveries"))).all()
    assert [(r.channel, r.attempts) for r in rows] == [("webhook", 2)]
    got = slack.requests("crm")
    assert len(got) == 1 and slack.attempts == 2 and slack.messages() == []  # once, and nothing to Slack
    headers = {k.lower(): v for k, v in got[0].headers.items()}
    ts = int(headers["x-churnwatch-timestamp"])
    assert abs(ts - time.time()) < 120
    assert headers["x-churnwatch-signature"] == webhook_signature(WEBHOOK_SECRET, ts, got[0].raw)
    assert headers["x-churnwatch-signature"] != webhook_signature(WEBHOOK_SECRET, ts + 1, got[0].raw)
    assert headers["x-churnwatch-delivery"] == str(rows[0].id)
    body = json.loads(got[0].raw)
    assert (body["type"], body["notice"], body["signal"]["account_id"]) == ("churnwatch.alert", "new", "acct-hook")
