"""The scorer's clock sweep, read API and start-up validation, on a real scorer process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.demo.processes import ServiceProcess
from shared.accounts import AccountProfile, Contact, TouchTier
from shared.consumer_progress import caught_up
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.read_access import READER
from tests.support.scorer_stream import END, account_events, produce
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.integration


async def publish_profiles(sandbox: Sandbox, profiles: list[AccountProfile]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for p in profiles:
            await producer.send_and_wait(
                sandbox.settings.topics.accounts, key=p.account_id.encode(), value=p.model_dump_json().encode()
            )
    finally:
        await producer.stop()


def logins(account: str, days: range, *, end_offset_days: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "kind": "usage",
            "action": "login",
            "event_id": f"{account}-{d}-{u}",
            "account_id": account,
            "user_id": f"u{u}",
            "occurred_at": (END - timedelta(days=end_offset_days + d)).isoformat(),
        }
        for d in days
        for u in range(4)
    ]


async def test_the_clock_ages_a_silent_account_and_the_api_explains_it(sandbox: Sandbox) -> None:
    renewal = (END + timedelta(days=20)).date()
    await publish_profiles(
        sandbox,
        [
            AccountProfile(
                account_id="silent",
                name="Silent Co",
                arr=50_000,
                seats_purchased=4,
                renewal_date=renewal,
                touch_tier=TouchTier.HIGH,
                csm=Contact(name="Ana", email="ana@example.com"),
            ),
            AccountProfile(account_id="busy", name="Busy Co", arr=9_000),
        ],
    )
    # "silent" was active for four weeks and stopped 12 days before the end; "busy" keeps going.
    await produce(sandbox.settings, logins("silent", range(12, 40)) + account_events("busy", days=40))
    env = {**sandbox.env, "CHURNWATCH_SWEEP_INTERVAL_SECONDS": "0.5", "CHURNWATCH_LOG_LEVEL": "WARNING"}
    scorer = ServiceProcess("scorer", env, free_port()).start()
    try:
        scorer.wait_ready(60)
        await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=60, what="scorer caught up")

        async def silent_health() -> Any:
            async with httpx.AsyncClient(headers=READER) as client:
                body = (await client.get(f"{scorer.url}/v1/accounts/silent/health")).json()
            return body if (body.get("as_of") or "").startswith(END.date().isoformat()) else None

        health = await await_until(silent_health, within=60, what="the sweep to evaluate the silent account")
        assert "inactivity" in health["active_signals"]
        assert "renewal_risk" in health["active_signals"]
        assert health["scorecard"] == "enterprise"
        assert "last active 12 days ago" in health["explanation"]
        assert "renewal in 20 days" in health["explanation"]
        components = {c["name"]: c for c in health["components"]}
        assert components["renewal_proximity"]["value"] == 20
        assert components["recency"]["value"] == 12 and components["recency"]["points"] == 16.7
        assert sum(c["contribution"] for c in health["components"]) == pytest.approx(health["score"], abs=0.6)
        assert health["history"][-1]["day"] == END.date().isoformat()
        assert len(health["history"]) >= 2

        async with httpx.AsyncClient(base_url=scorer.url) as anyone:  # no credential: refused
            assert (await anyone.get("/v1/accounts")).status_code == 401
            assert (await anyone.get("/v1/accounts/nobody/health")).status_code == 401
        async with httpx.AsyncClient(base_url=scorer.url, headers=READER) as client:
            listing = (await client.get("/v1/accounts", params={"sort": "score", "limit": 10})).json()["accounts"]
            assert listing[0]["account_id"] == "silent"
            assert listing[0]["arr"] == 50_000 and listing[0]["renewal_date"] == renewal.isoformat()
            band = listing[0]["band"]
            filtered = (await client.get("/v1/accounts", params={"band": band})).json()["accounts"]
            assert {a["band"] for a in filtered} == {band}
            assert (await client.get("/v1/accounts/nobody/health")).status_code == 404
            assert (await client.get("/v1/accounts", params={"band": "purple"})).status_code == 422
    finally:
        scorer.stop()


def test_a_bad_scorecard_stops_start_up_naming_line_and_field(sandbox: Sandbox, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("components:\n  usage_trend: {weight: 1, worst: 0.5, best: 1}\n  recency: {weight: lots}\n")
    env = {**sandbox.env, "CHURNWATCH_SCORECARD_PATH": str(bad)}
    returncode, out = ServiceProcess("scorer", env, free_port()).refused_start()
    assert returncode != 0
    assert f"{bad}:3: components.recency.weight" in out, out[-2000:]


@pytest.mark.parametrize(
    ("content", "problem"), [(None, "cannot read"), ("{not json", "JSON"), ('{"format": "other"}', "format")]
)
def test_an_unusable_risk_model_stops_start_up_naming_the_file(
    sandbox: Sandbox, tmp_path: Path, content: str | None, problem: str
) -> None:
    model = tmp_path / "model.json"
    if content is not None:
        model.write_text(content)
    env = {**sandbox.env, "CHURNWATCH_RISK_MODEL_PATH": str(model)}
    returncode, out = ServiceProcess("scorer", env, free_port()).refused_start()
    assert returncode != 0
    assert str(model) in out and problem.lower() in out.lower(), out[-2000:]


def test_with_fallback_an_unusable_risk_model_is_replaced_and_said_in_readyz(sandbox: Sandbox, tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    model.write_text("{not json")
    env = {**sandbox.env, "CHURNWATCH_RISK_MODEL_PATH": str(model), "CHURNWATCH_RISK_MODEL_FALLBACK": "true"}
    scorer = ServiceProcess("scorer", env, free_port()).start()
    try:
        scorer.wait_ready()
        body = httpx.get(f"{scorer.url}/readyz").json()
        assert str(model) in body["notes"]["risk_model"] and "default" in body["notes"]["risk_model"]
        metrics = httpx.get(f"{scorer.url}/metrics").text
        assert "churnwatch_scorer_risk_model_fallback 1.0" in metrics
    finally:
        scorer.stop()


async def _listing(sandbox: Sandbox, **params: Any) -> httpx.Response:
    from fastapi import FastAPI

    from services.scorer.api import health_router
    from shared.db import session_factory

    app = FastAPI()
    app.include_router(health_router(session_factory(sandbox.engine)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scorer") as client:
        return await client.get("/v1/accounts", params=params)


async def test_the_list_filters_searches_sorts_and_pages_with_a_total(sandbox: Sandbox) -> None:
    from tests.support.console import CSMS, HOSTILE_NAME, seed_accounts

    await seed_accounts(sandbox.engine, 200)
    body = (await _listing(sandbox, limit=10)).json()
    assert body["total"] == 200 and len(body["accounts"]) == 10
    scores = [a["score"] for a in body["accounts"]]
    assert scores == sorted(scores)
    first = body["accounts"][0]
    assert {"change_7d", "plan", "touch_tier", "csm", "renewal_date", "arr"} <= set(first)

    pages = [(await _listing(sandbox, sort="arr", limit=50, offset=o)).json()["accounts"] for o in (0, 50, 100, 150)]
    ids = [a["account_id"] for page in pages for a in page]
    assert len(ids) == len(set(ids)) == 200, "pages overlap or miss accounts"
    arrs = [a["arr"] for page in pages for a in page]
    assert arrs == sorted(arrs, reverse=True)

    mine = (await _listing(sandbox, csm=CSMS[1].upper(), limit=1000)).json()
    assert mine["total"] == 50 and {a["csm"]["email"] for a in mine["accounts"]} == {CSMS[1]}
    red_growth = (await _listing(sandbox, band="red", plan="growth", tier="low", limit=1000)).json()["accounts"]
    assert red_growth and all((a["band"], a["plan"], a["touch_tier"]) == ("red", "growth", "low") for a in red_growth)
    dropping = (await _listing(sandbox, signal_type="usage_drop", limit=1000)).json()
    assert dropping["total"] == 40 and all("usage_drop" in a["active_signals"] for a in dropping["accounts"])
    assert (await _listing(sandbox, q="script>")).json()["accounts"][0]["name"] == HOSTILE_NAME
    assert (await _listing(sandbox, q="acct-0001")).json()["total"] == 10  # acct-00010..00019
    assert (await _listing(sandbox, q="100%")).json()["total"] == 0  # % is a character, not a wildcard
    by_id = (await _listing(sandbox, account_id=["acct-00002", "acct-00003", "nobody"])).json()
    assert sorted(a["account_id"] for a in by_id["accounts"]) == ["acct-00002", "acct-00003"]
    past_the_end = (await _listing(sandbox, offset=500)).json()
    assert past_the_end["accounts"] == [] and past_the_end["total"] == 200

    changes = (await _listing(sandbox, sort="change", limit=1000)).json()["accounts"]
    deltas = [a["change_7d"] for a in changes if a["change_7d"] is not None]
    assert deltas == sorted(deltas) and len(deltas) == 200
    banded = [a["band"] for a in (await _listing(sandbox, sort="band", limit=1000)).json()["accounts"]]
    assert banded == sorted(banded, key=["red", "yellow", "green"].index)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"band": "purple"}, "band"),
        ({"tier": "gold"}, "tier"),
        ({"signal_type": "nope"}, "signal_type"),
        ({"sort": "vibes"}, "sort"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "0"}, "limit"),
    ],
)
async def test_a_bad_filter_is_a_422_naming_the_field(sandbox: Sandbox, params: dict[str, str], field: str) -> None:
    resp = await _listing(sandbox, **params)
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["query", field]


async def test_the_portfolio_sums_accounts_and_arr_by_band_and_csm(sandbox: Sandbox) -> None:
    from fastapi import FastAPI

    from services.scorer.api import health_router
    from shared.db import session_factory
    from tests.support.console import seed_accounts

    await seed_accounts(sandbox.engine, 100)
    app = FastAPI()
    app.include_router(health_router(session_factory(sandbox.engine)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scorer") as client:
        body = (await client.get("/v1/portfolio")).json()
        every = (await client.get("/v1/accounts", params={"limit": 1000})).json()["accounts"]
    assert body["accounts"] == 100 and sum(b["accounts"] for b in body["bands"]) == 100
    assert body["arr"] == pytest.approx(sum(a["arr"] for a in every))
    assert body["arr_at_risk"] == pytest.approx(sum(a["arr"] for a in every if a["band"] == "red"))
    assert sum(c["accounts"] for c in body["csms"]) == 100 and len(body["csms"]) == 4
    assert sum(c["arr_at_risk"] for c in body["csms"]) == pytest.approx(body["arr_at_risk"])
