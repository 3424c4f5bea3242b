"""The console's pages over real scorer and alerter processes (the console itself runs in this process)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from services.console.settings import ConsoleSettings
from services.demo.processes import ServiceProcess, free_port, running
from tests.integration.conftest import Sandbox
from tests.support.alerter import TOKEN, alerter_env, api, processed, risk_signal
from tests.support.console import (
    CSMS,
    HOSTILE_NAME,
    PASSWORD,
    READER,
    SERVICE_TOKEN,
    SESSION_SECRET,
    add_user,
    console_client,
    csrf_of,
    seed_accounts,
    signed_in_client,
    with_service_token,
)
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.integration
ANA = CSMS[0]


@dataclass(frozen=True)
class Stack:
    sandbox: Sandbox
    scorer: ServiceProcess
    alerter: ServiceProcess

    def settings(self, **kw: Any) -> ConsoleSettings:
        base: dict[str, Any] = {
            "session_secret": SESSION_SECRET,
            "scorer_url": self.scorer.url,
            "alerter_url": self.alerter.url,
            "alerter_token": TOKEN,
            "read_api_key": SERVICE_TOKEN,
            "database_schema": self.sandbox.settings.database_schema,
            "topic_prefix": self.sandbox.settings.topic_prefix,
        }
        return ConsoleSettings(**(base | kw))


@pytest.fixture
def services(sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer) -> Iterator[dict[str, ServiceProcess]]:
    ports = {"scorer": free_port(), "alerter": free_port()}
    env = with_service_token(alerter_env(sandbox, slack, smtp, ports["alerter"]))
    with running(ports, env) as procs:
        yield procs


@pytest.fixture
async def stack(
    sandbox: Sandbox, services: dict[str, ServiceProcess], produce: Callable[..., Any]
) -> AsyncIterator[Stack]:
    await seed_accounts(sandbox.engine, 120)
    await add_user(sandbox.settings, ANA, "Ana")
    await produce(risk_signal("acct-00001", account={"name": HOSTILE_NAME, "csm": {"email": ANA}}))
    await produce(risk_signal("acct-00002", signal_type="ticket_spike", signal_id="ticket_spike:acct-00002:1"))
    await await_until(lambda: processed(sandbox, 2), within=30, what="the alerter to record both signals")
    yield Stack(sandbox, services["scorer"], services["alerter"])


async def test_pages_need_a_sign_in_and_every_post_a_csrf_token(stack: Stack) -> None:
    async with console_client(stack.settings()) as client:
        resp = await client.get("/?band=red")
        assert resp.status_code == 303 and resp.headers["location"] == "/login?next=%2F%3Fband%3Dred"
        login = await client.get("/login")
        no_token = await client.post("/login", data={"email": ANA, "password": PASSWORD})
        assert no_token.status_code == 403
        wrong = await client.post("/login", data={"email": ANA, "password": "nope" * 4, "csrf": csrf_of(login.text)})
        assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
        ok = await client.post(
            "/login", data={"email": ANA, "password": PASSWORD, "csrf": csrf_of(login.text), "next": "//evil.example"}
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert (await client.post("/alerts/1/ack", data={"account_id": "acct-00001"})).status_code == 403
        page = await client.get("/")
        assert page.status_code == 200 and "script-src 'none'" in page.headers["content-security-policy"]
        assert (await client.post("/logout", data={"csrf": csrf_of(page.text)})).status_code == 303
        assert (await client.get("/")).status_code == 303


async def test_the_list_filters_pages_and_escapes(stack: Stack) -> None:
    async with console_client(stack.settings(page_size=25)) as client:
        await signed_in_client(client, ANA)
        first = await client.get("/")
        assert first.status_code == 200 and "1-25 of 120 accounts" in first.text
        hostile = (await client.get("/", params={"q": "script"})).text
        assert HOSTILE_NAME not in hostile and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
        assert 'rel="next" href="/?page=2"' in first.text
        last = await client.get("/", params={"page": 5})
        assert "101-120 of 120" in last.text
        mine = await client.get("/", params={"mine": "1"})
        assert "of 30 accounts" in mine.text
        red = await client.get("/", params={"band": "red", "signal_type": "usage_drop", "sort": "arr"})
        assert red.status_code == 200 and 'class="band band-green"' not in red.text
        found = await client.get("/", params={"q": "Company 42"})
        assert "1-1 of 1 accounts" in found.text and "acct-00042" in found.text
        for params, field in (({"band": "purple"}, "band"), ({"sort": "x"}, "sort"), ({"page": "0"}, "page")):
            bad = await client.get("/", params=params)
            assert bad.status_code == 400, bad.text[:300]
            assert f'data-testid="error-field">{field}<' in bad.text
        assert (await client.get("/", params={"colour": "red"})).status_code == 400


async def test_an_account_page_shows_the_chart_and_acks_an_alert(stack: Stack) -> None:
    alerter = stack.alerter.url
    async with console_client(stack.settings()) as client:
        await signed_in_client(client, ANA)
        page = await client.get("/accounts/acct-00001")
        assert page.status_code == 200
        assert '<svg role="img" aria-label="daily health score"' in page.text
        assert HOSTILE_NAME not in page.text and "&lt;script&gt;" in page.text
        assert "usage_drop" in page.text and 'data-action="ack"' in page.text
        found = (await api("GET", f"{alerter}/v1/alerts", params={"account_id": "acct-00001"}, headers=READER)).json()[
            "alerts"
        ]
        alert_id = found[0]["id"]
        resp = await client.post(
            f"/alerts/{alert_id}/ack", data={"csrf": csrf_of(page.text), "account_id": "acct-00001"}
        )
        assert resp.status_code == 303 and resp.headers["location"] == "/accounts/acct-00001"
        assert (await api("GET", f"{alerter}/v1/alerts/{alert_id}", headers=READER)).json()["state"] == "acknowledged"
        after = await client.get("/accounts/acct-00001")
        assert f"Alert {alert_id} (usage_drop) acknowledged by Ana." in after.text
        missing_outcome = await client.post(
            f"/alerts/{alert_id}/resolve", data={"csrf": csrf_of(after.text), "account_id": "acct-00001"}
        )
        assert missing_outcome.status_code == 400 and 'error-field">outcome<' in missing_outcome.text
        unknown = await client.get("/accounts/no-such-account")
        assert unknown.status_code == 404 and "no such account" in unknown.text


async def test_the_resolve_button_sends_the_outcome(stack: Stack) -> None:
    alerter = stack.alerter.url
    async with console_client(stack.settings()) as client:
        await signed_in_client(client, ANA)
        page = await client.get("/accounts/acct-00002")
        alert_id = (
            await api("GET", f"{alerter}/v1/alerts", params={"account_id": "acct-00002"}, headers=READER)
        ).json()["alerts"][0]
        form = {"csrf": csrf_of(page.text), "account_id": "acct-00002", "outcome": "saved", "note": "called them"}
        assert (await client.post(f"/alerts/{alert_id['id']}/resolve", data=form)).status_code == 303
        detail = (await api("GET", f"{alerter}/v1/alerts/{alert_id['id']}", headers=READER)).json()
        assert detail["state"] == "resolved"
        assert detail.get("outcome") == "saved", "the alerter does not store the outcome yet (issue 11)"
        after = (await client.get("/accounts/acct-00002")).text
        assert 'data-testid="outcome">Saved after outreach<' in after and "called them" in after


async def test_the_portfolio_sums_the_book_and_the_week(stack: Stack, tmp_path: Any) -> None:
    (tmp_path / "run1").mkdir()
    (tmp_path / "run1" / "backtest.html").write_text("<html><body>report</body></html>")
    async with console_client(stack.settings(backtest_dir=tmp_path)) as client:
        await signed_in_client(client, ANA)
        page = await client.get("/portfolio")
        assert page.status_code == 200 and "<strong>120</strong> accounts" in page.text
        assert "usage_drop" in page.text and "ticket_spike" in page.text
        assert 'href="/backtest/latest"' in page.text
        assert (await client.get("/backtest/latest")).text == "<html><body>report</body></html>"


async def test_an_upstream_that_does_not_answer_is_a_503_page(sandbox: Sandbox) -> None:
    await add_user(sandbox.settings, ANA, "Ana")
    dead = f"http://127.0.0.1:{free_port()}"
    settings = ConsoleSettings(
        session_secret=SESSION_SECRET,
        scorer_url=dead,
        alerter_url=dead,
        database_schema=sandbox.settings.database_schema,
        upstream_timeout_seconds=1,
    )
    async with console_client(settings) as client:
        await signed_in_client(client, ANA)
        resp = await client.get("/")
        assert resp.status_code == 503 and "The scorer cannot be reached" in resp.text
        assert "Traceback" not in resp.text
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {
            "database": True,
            "scorer": False,
            "alerter": False,
        }


async def test_with_trust_proxy_the_header_names_the_user(sandbox: Sandbox) -> None:
    await add_user(sandbox.settings, "off@csm.example.com", "Off")
    settings = ConsoleSettings(
        session_secret=SESSION_SECRET,
        scorer_url=f"http://127.0.0.1:{free_port()}",
        database_schema=sandbox.settings.database_schema,
        trust_proxy=True,
        upstream_timeout_seconds=1,
    )
    from services.console.users import disable_user

    await disable_user(sandbox.engine, "off@csm.example.com")
    async with console_client(settings) as client:
        assert (await client.get("/portfolio")).status_code == 303
        named = await client.get("/portfolio", headers={"X-Forwarded-User": "new@csm.example.com"})
        assert named.status_code == 503  # signed in; the (absent) scorer is what fails
        disabled = await client.get("/portfolio", headers={"X-Forwarded-User": "off@csm.example.com"})
        assert disabled.status_code == 303


async def test_a_session_of_another_deployment_names_nobody_here(sandbox: Sandbox) -> None:
    await add_user(sandbox.settings, ANA, "Ana")
    here = ConsoleSettings(
        session_secret=SESSION_SECRET, database_schema=sandbox.settings.database_schema, upstream_timeout_seconds=1
    )
    elsewhere = ConsoleSettings(
        session_secret=SESSION_SECRET,
        database_schema="public",
        scorer_url="http://127.0.0.1:1",
        upstream_timeout_seconds=1,
    )
    async with console_client(here) as client:
        await signed_in_client(client, ANA)
        cookies = dict(client.cookies)
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
    async with console_client(elsewhere) as other:
        other.cookies.update(cookies)
        resp = await other.get("/portfolio")
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login")


async def test_an_open_data_problem_is_said_above_the_list(stack: Stack) -> None:
    """A silent source explains missing alerts and low usage: the list says so (from GET /v1/data-problems)."""
    async with console_client(stack.settings()) as client:
        await signed_in_client(client, ANA)
        assert 'data-testid="data-problem"' not in (await client.get("/")).text
        since = date(2026, 11, 28)
        watch = json.dumps({"v": 1, "raised": {"source:mobile-app": since.toordinal()}})
        async with stack.sandbox.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO scorer_partition_watch (topic, partition, watch) VALUES (:t, 0, CAST(:w AS jsonb))"),
                {"t": stack.sandbox.settings.topics.events, "w": watch},
            )
        page = (await client.get("/")).text
        assert "source <strong>mobile-app</strong> has sent (almost) nothing since 2026-11-28" in page
        assert "held back until it ends" in page
