"""A source that goes silent is a data problem for the operators, not a churn warning for the CSMs.

Fifty days of a small base through the real scorer and alerter: most accounts send from "web", some only from
"mobile", some from both. "mobile" sends nothing for ten days (an SDK broken in a release) and then comes back;
one web account stops for good on its own. The operators' Slack channel gets the data problem's notice (and its
end), exactly once although every partition sees it; no inactivity or usage-drop alert opens for an account the
silent source touches; the lone churner's inactivity alert opens as usual; the scorer counts what it held back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from sqlalchemy import text

from services.demo.backtest_run import wait_until_scored
from services.demo.processes import REPO_ROOT, running
from tests.integration.conftest import Sandbox
from tests.support.alerter import alerter_env
from tests.support.polling import await_until
from tests.support.read_access import READER
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

DAYS = 50
OUTAGE = range(30, 40)  # days on which "mobile" sends nothing
CHURNER = "web-0"  # stops on day 30, alone
MOBILE_PER_PARTITION = 3  # so that each partition's "mobile" usually sends enough to be watched (>= 20 a day)


def _accounts(partitions: int) -> dict[str, tuple[str, ...]]:
    """30 web accounts, and per partition three mobile-only and two web+mobile accounts."""
    out: dict[str, tuple[str, ...]] = {f"web-{i}": ("web",) for i in range(30)}
    for prefix, sources, per in (("mobile", ("mobile",), MOBILE_PER_PARTITION), ("both", ("web", "mobile"), 2)):
        taken = dict.fromkeys(range(partitions), 0)
        n = 0
        while min(taken.values()) < per:
            name = f"{prefix}-{n}"
            p = (murmur2(name.encode()) & 0x7FFFFFFF) % partitions
            if taken[p] < per:
                out[name], taken[p] = sources, taken[p] + 1
            n += 1
    return out


def _events(
    start: datetime, accounts: dict[str, tuple[str, ...]], outage: range = OUTAGE, days: range = range(DAYS)
) -> list[tuple[datetime, str, bytes]]:
    out = []
    for day in days:
        for account, sources in accounts.items():
            if account == CHURNER and day >= OUTAGE.start:
                continue
            for source in sources:
                if source == "mobile" and day in outage:
                    continue
                for n in range(8):
                    at = start + timedelta(days=day, hours=8 + n, minutes=len(account))
                    body = {"kind": "usage", "action": "login", "event_id": f"{account}-{source}-{day}-{n}"}
                    body |= {"account_id": account, "user_id": f"{account}-u{n % 4}", "source": source}
                    out.append((at, account, json.dumps(body | {"occurred_at": at.isoformat()}).encode()))
    return sorted(out)


async def _produce(sandbox: Sandbox, events: list[tuple[datetime, str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all", linger_ms=20)
    await producer.start()
    try:
        sent = [await producer.send(sandbox.settings.topics.events, body, key=a.encode()) for _, a, body in events]
        for f in sent:
            await f
    finally:
        await producer.stop()


async def _alerts(sandbox: Sandbox) -> list[tuple[str, str, str]]:
    async with sandbox.engine.connect() as conn:
        rows = await conn.execute(text("SELECT account_id, signal_type, state FROM alerts ORDER BY id"))
        return [(r.account_id, r.signal_type, r.state) for r in rows]


async def test_a_silent_source_is_one_ops_notice_and_no_csm_alert(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer
) -> None:
    start = _today() - timedelta(days=DAYS - 1)
    accounts = _accounts(sandbox.settings.events_partitions)
    scorer_port, alerter_port = free_port(), free_port()
    with running({"scorer": scorer_port, "alerter": alerter_port}, _env(sandbox, slack, smtp, alerter_port)):
        await _produce(sandbox, _events(start, accounts))
        await wait_until_scored(sandbox.settings, within=240, every=0.5)

        async def settled() -> bool:
            kinds = {(a, t, s) for a, t, s in await _alerts(sandbox)}
            return ("source:mobile", "data_quality", "resolved") in kinds and any(a == CHURNER for a, _, _ in kinds)

        await await_until(settled, within=120, what="the data problem's notice and end, and the churner's alert")
        await await_until(lambda: _at_least(_ops_messages(slack), 1), within=60, what="the ops channel's message")
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{scorer_port}/metrics")).text

    alerts = await _alerts(sandbox)
    assert [a for a in alerts if a[1] == "data_quality"] == [("source:mobile", "data_quality", "resolved")]
    touched = {a for a, sources in accounts.items() if "mobile" in sources}
    caused = [a for a in alerts if a[0] in touched]
    assert caused == [], f"alerts the silent source caused reached CSMs: {caused}"
    assert any(a[:2] == (CHURNER, "inactivity") for a in alerts), "a lone churner going quiet still alerts"
    ops = " ".join(str(m.get("text")) for m in slack.messages("ops"))
    # the problem and its end, once between three partitions (a replay this fast sends both in one message)
    assert ops.count("Warning: data quality on source:mobile") == 1, ops
    assert ops.count("Resolved: data quality on source:mobile") == 1, ops
    assert not any("mobile" in str(m.get("text")) for m in slack.messages("csm"))
    held = dict(re.findall(r'^churnwatch_scorer_held_signals_total\{signal_type="(\w+)"\} ([0-9.e+]+)$', metrics, re.M))
    assert float(held.get("inactivity", 0)) > 0, "the scorer counts the raises it held back"
    print(  # the figures for the record (pytest -s)
        f"silent source: {len(touched)} accounts touched, ops notices 1 raised + 1 ended, CSM alerts from it"
        f" {len(caused)}, lone churner alerted, raises held back by type {held}"
    )


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _env(sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, alerter_port: int) -> dict[str, str]:
    hooks = {c: slack.url_for(c) for c in ("csm", "support", "ops")}
    env = alerter_env(sandbox, slack, smtp, alerter_port, CHURNWATCH_SLACK_WEBHOOKS=json.dumps(hooks))
    return env | {"CHURNWATCH_NOTIFY_MAX_AGE_SECONDS": str(60 * 86400), "CHURNWATCH_MIN_RULE_LIFT": "0"}


async def test_a_person_releases_a_data_problem_and_its_held_alerts_go_out(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer
) -> None:
    """ "mobile" stops twelve days before today and stays silent: it is listed as open and held; once a person
    releases it (the app was retired, say), the mobile accounts' inactivity opens at their next day close."""
    start = _today() - timedelta(days=DAYS)
    accounts = _accounts(sandbox.settings.events_partitions)
    mobile = {a for a, sources in accounts.items() if sources == ("mobile",)}
    ongoing = range(DAYS - 12, DAYS + 1)
    scorer_port, alerter_port = free_port(), free_port()
    scorer = f"http://127.0.0.1:{scorer_port}"
    with running({"scorer": scorer_port, "alerter": alerter_port}, _env(sandbox, slack, smtp, alerter_port)):
        await _produce(sandbox, _events(start, accounts, outage=ongoing))  # up to yesterday
        await wait_until_scored(sandbox.settings, within=240, every=0.5)
        async with httpx.AsyncClient(base_url=scorer, headers=READER) as client:
            listed = (await client.get("/v1/data-problems")).json()["problems"]
            assert [(p["problem"], p["since"], p["released_by"]) for p in listed] == [
                ("source:mobile", (start + timedelta(days=ongoing.start)).date().isoformat(), None)
            ]
            assert not [a for a in await _alerts(sandbox) if a[0] in mobile], "held while the problem is open"

            done = _cli(sandbox, "data-problem", "release", "source:mobile", "--by", "ops@example.com")
            assert done.returncode == 0 and "released source:mobile" in done.stdout, done.stdout + done.stderr
            listed = (await client.get("/v1/data-problems")).json()["problems"]
            assert listed[0]["released_by"] == "ops@example.com"
            await await_until(
                lambda: _metric(client, "churnwatch_scorer_data_problem_releases"),
                within=30,
                what="the scorer reading the release",
            )

            await _produce(sandbox, _events(start, accounts, outage=ongoing, days=range(DAYS, DAYS + 1)))  # today

            async def released_alerts() -> set[str]:
                return {a for a, t, _ in await _alerts(sandbox) if a in mobile and t == "inactivity"}

            await await_until(
                lambda: _equal(released_alerts(), mobile), within=120, what="the released inactivity alerts"
            )
    again = _cli(sandbox, "data-problem", "release", "source:nothing", "--by", "ops@example.com")
    assert again.returncode == 1 and "no open data problem 'source:nothing'" in again.stderr


def _cli(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **sandbox.env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    found = re.findall(rf"^{name} ([0-9.e+]+)$", (await client.get("/metrics")).text, re.M)
    return float(found[0]) if found else 0.0


async def _equal(found: Awaitable[set[str]], wanted: set[str]) -> bool:
    return await found == wanted


async def _ops_messages(slack: SlackWebhookServer) -> int:
    return len(slack.messages("ops"))


async def _at_least(count: Awaitable[int], n: int) -> bool:
    return await count >= n
