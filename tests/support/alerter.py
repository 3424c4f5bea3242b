"""What the alerter's integration tests (and bench/alerter.py) share: a sample signal, the alerter's
environment against the test servers, a running alerter process, and outbox/API probes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from services.demo.processes import ServiceProcess, running
from shared.signals import RiskSignal
from tests.integration.conftest import Sandbox
from tests.support.read_access import READER
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer

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
        # grouping at test speed: a new group waits 0.2 s for the rest of its account's notices, the next
        # message about the same account waits 1 s (the defaults are 5 s and 300 s); tests of grouping set theirs
        "CHURNWATCH_GROUP_WAIT_SECONDS": "0.2",
        "CHURNWATCH_GROUP_INTERVAL_SECONDS": "1",
        "CHURNWATCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CHURNWATCH_LINK_SECRET": LINK_SECRET,
        "CHURNWATCH_ALERTER_API_TOKEN": TOKEN,
        "CHURNWATCH_LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def running_alerter(env: dict[str, str], port: int) -> Iterator[ServiceProcess]:
    with running({"alerter": port}, env) as procs:
        yield procs["alerter"]


async def delivery_counts(sandbox: Sandbox) -> dict[str, int]:
    async with sandbox.engine.connect() as conn:
        rows = await conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        return {r[0]: int(r[1]) for r in rows}


async def all_sent(sandbox: Sandbox, expected: int) -> bool:
    counts = await delivery_counts(sandbox)
    return counts.get("sent", 0) >= expected and counts.get("pending", 0) == 0


def accounts_in(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m for msg in messages for m in re.findall(r"\((acct-[\w-]+)\)", msg["text"]))


async def api(method: str, url: str, **kw: Any) -> httpx.Response:
    """One request; a GET without headers presents the sandbox's read credential, as the console does."""
    if method == "GET" and "headers" not in kw:
        kw["headers"] = READER
    async with httpx.AsyncClient() as client:
        return await client.request(method, url, **kw)


async def processed(sandbox: Sandbox, n: int) -> bool:
    """Whether the alerter has recorded at least ``n`` signals as processed."""
    return await scalar(sandbox, "SELECT count(*) FROM processed_signals") >= n


async def scalar(sandbox: Sandbox, sql: str) -> int:
    async with sandbox.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one() or 0)


async def alert_detail(base: str, account_id: str, signal_type: str) -> dict[str, Any]:
    """The one alert of (account, type), with its deliveries, from the alerter's API."""
    params = {"account_id": account_id, "signal_type": signal_type}
    found = (await api("GET", f"{base}/v1/alerts", params=params)).json()["alerts"]
    assert len(found) == 1, found
    detail: dict[str, Any] = (await api("GET", f"{base}/v1/alerts/{found[0]['id']}")).json()
    return detail


async def metric(base: str, sample: str) -> float:
    """One sample's value on a service's /metrics (0 when absent)."""
    body = (await api("GET", f"{base}/metrics")).text
    match = re.search(rf"^{re.escape(sample)} (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
