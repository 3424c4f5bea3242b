"""Events posted over HTTP become a Slack message and an email, through real Kafka, PostgreSQL and processes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.demo.processes import ServiceProcess, running
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.integration.conftest import Sandbox
from tests.support.polling import wait_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, ports: dict[str, int]
) -> Iterator[dict[str, ServiceProcess]]:
    env = {
        **sandbox.env,
        "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url,
        "CHURNWATCH_SMTP_HOST": "127.0.0.1",
        "CHURNWATCH_SMTP_PORT": str(smtp.port),
        "CHURNWATCH_LOG_LEVEL": "WARNING",
    }
    with running(ports, env) as procs:
        yield procs


@pytest.fixture
async def auth(sandbox: Sandbox) -> dict[str, str]:
    key = await issue_key(sandbox.settings, name="e2e", scopes=frozenset(Scope))
    return {"Authorization": f"Bearer {key}"}


def sliding_account_events(account_id: str, end: datetime) -> list[dict[str, Any]]:
    """28 days of steady use, then a week of little use and a pile of tickets."""
    events: list[dict[str, Any]] = []
    for d in range(35):
        at = end - timedelta(days=34 - d)
        logins = 10 if d < 28 else 1
        for k in range(logins):
            events.append(
                {
                    "kind": "usage",
                    "action": "login",
                    "event_id": f"{account_id}-l-{d}-{k}",
                    "account_id": account_id,
                    "user_id": f"u{k}",
                    "occurred_at": at.isoformat(),
                }
            )
        if d >= 30:
            events.append(
                {
                    "kind": "ticket",
                    "action": "opened",
                    "event_id": f"{account_id}-t-{d}",
                    "account_id": account_id,
                    "ticket_id": f"T{d}",
                    "priority": "urgent",
                    "occurred_at": at.isoformat(),
                }
            )
    return events


def test_posted_events_raise_an_alert_on_slack_and_email(
    pipeline: dict[str, ServiceProcess], slack: SlackWebhookServer, smtp: SmtpServer, auth: dict[str, str]
) -> None:
    ingest = pipeline["ingest"].url
    account = {
        "name": "Globex <Corp>",
        "arr": 120000,
        "touch_tier": "high",
        "csm": {"name": "Ana", "email": "ana@csm.example.com", "slack": "@ana"},
    }
    assert httpx.put(f"{ingest}/v1/accounts/acct-e2e", json=account, headers=auth).status_code == 202
    events = sliding_account_events("acct-e2e", datetime.now(UTC).replace(microsecond=0))
    resp = httpx.post(f"{ingest}/v1/events", json={"events": events}, timeout=30, headers=auth)
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == len(events)

    slack_msgs = wait_until(
        lambda: [m for m in slack.messages() if "acct-e2e" in m["text"]], timeout=60, what="a Slack alert"
    )
    mails = wait_until(
        lambda: [m for m in smtp.messages() if m["To"] == "ana@csm.example.com"], timeout=60, what="an email"
    )
    assert "Globex &lt;Corp&gt;" in slack_msgs[0]["text"]  # escaped for Slack mrkdwn
    assert mails[0]["Subject"].startswith("[Churnwatch]")
    assert mails[0].is_multipart()


def test_bad_event_gets_a_422_naming_the_field(pipeline: dict[str, ServiceProcess], auth: dict[str, str]) -> None:
    bad = {
        "events": [
            {
                "kind": "usage",
                "action": "login",
                "event_id": "ok",
                "account_id": "a",
                "occurred_at": "2026-11-01T00:00:00Z",
            },
            {"kind": "usage", "action": "login", "event_id": "bad", "account_id": "a", "occurred_at": "yesterday"},
        ]
    }
    resp = httpx.post(f"{pipeline['ingest'].url}/v1/events", json=bad, headers=auth)
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "invalid_event"
    assert err["fields"][0]["path"].startswith("events[1]")
    assert "occurred_at" in err["fields"][0]["path"]
