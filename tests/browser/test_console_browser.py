"""The console in real headless Chromium over real scorer, alerter and console processes on the local stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Dialog, Page, expect

from services.demo.processes import ServiceProcess, free_port, running
from shared.accounts import AccountProfile, Contact, TouchTier
from shared.consumer_progress import caught_up
from tests.integration.conftest import Sandbox
from tests.support.alerter import TOKEN, alerter_env, api, processed, risk_signal
from tests.support.console import CSMS, HOSTILE_NAME, PASSWORD, READER, add_user, console_env, with_service_token
from tests.support.polling import await_until
from tests.support.scorer_stream import END, account_events
from tests.support.scorer_stream import produce as produce_events
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.integration
ANA = CSMS[0]
HOSTILE = "acct-hostile"
ACCOUNTS = [HOSTILE, *(f"acct-{i:02d}" for i in range(1, 8))]


def profile(account_id: str, i: int) -> AccountProfile:
    return AccountProfile(
        account_id=account_id,
        name=HOSTILE_NAME if account_id == HOSTILE else f"Browser Co {i}",
        plan="growth" if i % 2 else "starter",
        arr=10_000 * (i + 1),
        seats_purchased=10,
        renewal_date=(END + timedelta(days=30 + i)).date(),
        touch_tier=TouchTier.HIGH,
        csm=Contact(name="Ana" if i % 2 == 0 else "Bo", email=CSMS[0] if i % 2 == 0 else CSMS[1]),
    )


async def publish(sandbox: Sandbox) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for i, account_id in enumerate(ACCOUNTS):
            p = profile(account_id, i)
            await producer.send_and_wait(
                sandbox.settings.topics.accounts, p.model_dump_json().encode(), key=p.account_id.encode()
            )
    finally:
        await producer.stop()
    await produce_events(sandbox.settings, [e for a in ACCOUNTS for e in account_events(a, days=40)])


@pytest.fixture
def services(sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer) -> Iterator[dict[str, ServiceProcess]]:
    ports = {"scorer": free_port(), "alerter": free_port()}
    with running(ports, with_service_token(alerter_env(sandbox, slack, smtp, ports["alerter"]))) as procs:
        env = console_env(
            sandbox.env, scorer_url=procs["scorer"].url, alerter_url=procs["alerter"].url, alerter_token=TOKEN
        )
        with running({"console": free_port()}, env) as console:
            yield {**procs, **console}


async def scored(scorer: str) -> bool:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{scorer}/v1/accounts", params={"limit": 100}, headers=READER)).json()
    return body["total"] == len(ACCOUNTS) and all(a["name"] for a in body["accounts"])


async def shot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000, f"empty screenshot {path}"


async def test_a_csm_signs_in_filters_opens_an_account_and_acks_its_alert(
    sandbox: Sandbox,
    services: dict[str, ServiceProcess],
    produce: Callable[..., Any],
    browser: Browser,
    output_dir: Path,
) -> None:
    await add_user(sandbox.settings, ANA, "Ana")
    await publish(sandbox)
    scorer, alerter, console = (services[n].url for n in ("scorer", "alerter", "console"))
    await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=90, what="the scorer to catch up")
    await await_until(lambda: scored(scorer), within=60, what="every account scored with its profile")
    await produce(risk_signal(HOSTILE, account={"name": HOSTILE_NAME, "csm": {"email": ANA}}))
    await await_until(lambda: processed(sandbox, 1), within=30, what="the alerter to record the signal")

    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)

    await page.goto(f"{console}/")
    await expect(page).to_have_url(f"{console}/login?next=%2F")
    await shot(page, output_dir, "01-sign-in")
    await page.fill("input[name=email]", ANA)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Ana")
    await expect(page.get_by_test_id("count")).to_contain_text(f"of {len(ACCOUNTS)} accounts")
    await expect(page.get_by_text(HOSTILE_NAME, exact=True)).to_be_visible()  # shown as text, not run
    await shot(page, output_dir, "02-at-risk-list")

    await page.check("input[name=mine]")
    await page.select_option("select[name=sort]", "arr")
    await page.click("form[data-testid=filters] button[type=submit]")
    await expect(page.get_by_test_id("count")).to_contain_text("of 4 accounts")  # Ana's: every other account
    rows = page.locator("table[data-testid=accounts] tbody tr")
    await expect(rows).to_have_count(4)
    assert "mine=1" in page.url and "sort=arr" in page.url
    await shot(page, output_dir, "03-my-accounts-by-arr")

    await page.get_by_role("link", name=HOSTILE_NAME).click()
    await expect(page.get_by_test_id("account-name")).to_have_text(HOSTILE_NAME)
    chart = page.locator("section[data-testid=chart] svg.score-chart")
    await expect(chart).to_be_visible()
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    assert await chart.locator("path").count() > 5, "the chart has no drawn lines"
    # the scorer's own signals for this account make alerts too; the one fed to the alerter is usage_drop's
    usage_drop = page.locator("article.alert", has=page.get_by_role("heading", name="usage_drop"))
    await expect(usage_drop.get_by_test_id("alert-state")).to_have_text("open")
    await shot(page, output_dir, "04-account")

    await usage_drop.locator("button[data-action=ack]").click()
    await expect(page.get_by_role("status")).to_contain_text("(usage_drop) acknowledged by Ana")
    await expect(usage_drop.get_by_test_id("alert-state")).to_have_text("acknowledged")
    params = {"account_id": HOSTILE, "signal_type": "usage_drop"}
    found = (await api("GET", f"{alerter}/v1/alerts", params=params, headers=READER)).json()["alerts"]
    assert [a["state"] for a in found] == ["acknowledged"]
    await shot(page, output_dir, "05-account-acknowledged")

    await page.goto(f"{console}/portfolio")
    await expect(page.get_by_test_id("totals")).to_contain_text(f"{len(ACCOUNTS)}")
    await expect(page.get_by_test_id("alerts-by-type")).to_contain_text("usage_drop")
    await shot(page, output_dir, "06-portfolio")

    missing = await page.goto(f"{console}/accounts/no-such-account")
    assert missing is not None and missing.status == 404
    await shot(page, output_dir, "07-unknown-account")
    bad = await page.goto(f"{console}/?band=purple")
    assert bad is not None and bad.status == 400
    await expect(page.get_by_test_id("error-field")).to_have_text("band")
    await shot(page, output_dir, "08-bad-filter")

    assert dialogs == [], f"a dialog fired: {dialogs}"
    print(f"screenshots in {output_dir}")
