"""Ingest's API against the real broker and database: native and Segment paths, both SDKs, auth and scopes,
size and rate limits. Each test reads back what Kafka holds."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import segment.analytics as segment_sdk  # type: ignore[import-untyped]
from aiokafka import AIOKafkaConsumer
from rudderstack.analytics.client import Client as RudderClient  # type: ignore[import-untyped]

from services.demo.processes import ServiceProcess, running
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until, wait_until

pytestmark = pytest.mark.integration

ALL = frozenset(Scope)


@pytest.fixture
def ingest(sandbox: Sandbox, ports: dict[str, int]) -> Iterator[ServiceProcess]:
    env = {
        **sandbox.env,
        "CHURNWATCH_LOG_LEVEL": "WARNING",
        "CHURNWATCH_KEY_CACHE_SECONDS": "0.5",
        "CHURNWATCH_RATE_LIMIT_PER_SECOND": "2",
        "CHURNWATCH_RATE_LIMIT_BURST": "50",
    }
    with running({"ingest": ports["ingest"]}, env) as procs:
        yield procs["ingest"]


@pytest.fixture
async def keys(sandbox: Sandbox) -> dict[str, str]:
    return {
        "all": await issue_key(sandbox.settings, name="all", scopes=ALL),
        "events": await issue_key(sandbox.settings, name="events", scopes=frozenset({Scope.WRITE_EVENTS})),
        "read": await issue_key(sandbox.settings, name="read", scopes=frozenset({Scope.READ})),
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def usage(event_id: str, account: str = "acct-1", **extra: Any) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return {"kind": "usage", "action": "login", "event_id": event_id, "account_id": account, "occurred_at": at, **extra}


async def consume(sandbox: Sandbox, topic: str, count: int, within: float = 60) -> list[dict[str, Any]]:
    """Every message on the topic from the start, once at least ``count`` are there."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=sandbox.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:

        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(json.loads(r.value) for r in records)
            return len(seen) >= count

        await await_until(enough, within=within, what=f"{count} messages on {topic}")
    finally:
        await consumer.stop()
    return seen


@pytest.fixture
async def client(ingest: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as c:
        yield c


async def test_native_events_and_accounts_reach_kafka(
    client: httpx.AsyncClient, keys: dict[str, str], sandbox: Sandbox
) -> None:
    batch = {"events": [usage(f"n-{i}") for i in range(20)]}
    resp = await client.post("/v1/events", json=batch, headers={**bearer(keys["all"]), "X-Request-ID": "req-42"})
    assert resp.status_code == 202, resp.text
    assert resp.headers["X-Request-ID"] == "req-42"
    assert resp.json()["accepted"] == 20
    profile = {"name": "Initech", "arr": 50000, "touch_tier": "high", "csm": {"email": "bob@example.com"}}
    assert (await client.put("/v1/accounts/acct-1", json=profile, headers=bearer(keys["all"]))).status_code == 202
    got = await client.get("/v1/accounts/acct-1", headers=bearer(keys["read"]))
    assert got.status_code == 200 and got.json()["csm"]["email"] == "bob@example.com"
    assert (await client.get("/v1/accounts/nope", headers=bearer(keys["read"]))).status_code == 404

    events = await consume(sandbox, sandbox.settings.topics.events, 20)
    assert sorted(e["event_id"] for e in events) == sorted(f"n-{i}" for i in range(20))
    assert all(e["received_at"] and e["schema_version"] == 1 for e in events)
    accounts = await consume(sandbox, sandbox.settings.topics.accounts, 1)
    assert accounts[0]["name"] == "Initech"


async def test_keys_are_required_and_scoped(client: httpx.AsyncClient, keys: dict[str, str], sandbox: Sandbox) -> None:
    event = usage("auth-1")
    assert (await client.post("/v1/events", json=event)).status_code == 401
    assert (await client.post("/v1/events", json=event, headers=bearer("cw_nope_nope"))).status_code == 401
    forbidden = await client.post("/v1/events", json=event, headers=bearer(keys["read"]))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    put = await client.put("/v1/accounts/a", json={"name": "A"}, headers=bearer(keys["events"]))
    assert put.status_code == 403
    assert (await client.post("/v1/events", json=event, headers=bearer(keys["events"]))).status_code == 202

    from services.ingest.keystore import revoke_key

    prefix = keys["events"].split("_")[1]
    assert await revoke_key(sandbox.engine, prefix)

    async def refused() -> bool:
        return (await client.post("/v1/events", json=event, headers=bearer(keys["events"]))).status_code == 401

    await await_until(refused, within=30, what="the revoked key to be refused")
    metrics = (await client.get("/metrics")).text
    assert 'churnwatch_ingest_auth_failures_total{reason="missing_key"}' in metrics
    assert keys["all"] not in metrics


async def test_validation_errors_name_the_index_and_field(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    batch = {"events": [usage("ok"), usage("bad", occurred_at="yesterday"), usage("late", occurred_at=future)]}
    resp = await client.post("/v1/events", json=batch, headers=bearer(keys["all"]))
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["accepted"] == 0 and err["rejected_indexes"] == [1, 2]
    assert [f["path"] for f in err["fields"]] == ["events[1].occurred_at", "events[2].occurred_at"]
    assert err["fields"][1]["type"] == "occurred_at_out_of_range"
    malformed = await client.post("/v1/events", content=b"{not json", headers=bearer(keys["all"]))
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"


async def test_size_limits_are_enforced_before_parsing(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    auth = bearer(keys["all"])
    huge = b'{"events": [' + b"0," * 300_000 + b"0]}"
    assert (await client.post("/v1/events", content=huge, headers=auth)).status_code == 413
    big_event = usage("big", properties={"blob": "x" * 40_000})
    resp = await client.post("/v1/events", json={"events": [usage("small"), big_event]}, headers=auth)
    assert resp.status_code == 413 and resp.json()["error"]["fields"][0]["path"] == "events[1]"
    bomb = gzip.compress(b'{"batch": [' + b" " * 50_000_000 + b"]}")  # 50 MB inflated, ~50 KB on the wire
    resp = await client.post("/v1/batch", content=bomb, headers={**auth, "Content-Encoding": "gzip"})
    assert resp.status_code == 413


async def test_rate_limit_answers_429_with_retry_after(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    key = await issue_key(sandbox.settings, name="hammer", scopes=ALL)
    statuses = [(await client.get("/v1/accounts/x", headers=bearer(key))) for _ in range(70)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert "churnwatch_ingest_rate_limited_total" in (await client.get("/metrics")).text


async def test_segment_and_rudderstack_sdks_work_by_changing_the_host(
    ingest: ServiceProcess, keys: dict[str, str], sandbox: Sandbox
) -> None:
    errors: list[Exception] = []
    seg = segment_sdk.Client(
        write_key=keys["all"], host=ingest.url, sync_mode=True, on_error=lambda e, _: errors.append(e)
    )
    tag = uuid.uuid4().hex[:6]
    seg.group(user_id="u1", group_id="acct-seg", traits={"name": "Umbrella", "plan": "pro", "csm_email": "c@x.io"})
    seg.track(
        user_id="u1",
        event="Report Exported",
        properties={"quantity": 3},
        context={"groupId": "acct-seg"},
        message_id=f"seg-{tag}-1",
    )
    seg.track(
        user_id="u1",
        event="Ticket Opened",
        properties={"ticket_id": "T-9", "priority": "urgent"},
        context={"groupId": "acct-seg"},
        message_id=f"seg-{tag}-2",
    )
    seg.page(user_id="u1", name="Billing", context={"groupId": "acct-seg"}, message_id=f"seg-{tag}-3")
    seg.identify(user_id="u1", traits={"email": "u1@x.io"})
    seg.flush()
    rudder = RudderClient(
        write_key=keys["all"], host=ingest.url, sync_mode=True, gzip=True, on_error=lambda e, _: errors.append(e)
    )
    rudder.track(
        user_id="u2",
        event="NPS Submitted",
        properties={"nps": 3, "comment": "slow"},
        context={"groupId": "acct-seg"},
        message_id=f"rud-{tag}-1",
    )
    rudder.flush()
    assert not errors

    events = {e["event_id"]: e for e in await consume(sandbox, sandbox.settings.topics.events, 4)}
    assert events[f"seg-{tag}-1"]["kind"] == "usage" and events[f"seg-{tag}-1"]["feature"] == "Report Exported"
    assert events[f"seg-{tag}-1"]["quantity"] == 3
    assert events[f"seg-{tag}-2"]["kind"] == "ticket" and events[f"seg-{tag}-2"]["priority"] == "urgent"
    assert events[f"seg-{tag}-3"]["feature"] == "page:Billing"
    assert events[f"rud-{tag}-1"]["kind"] == "feedback" and events[f"rud-{tag}-1"]["nps"] == 3
    assert all(e["account_id"] == "acct-seg" for e in events.values())

    profile = wait_until(
        lambda: httpx.get(f"{ingest.url}/v1/accounts/acct-seg", headers=bearer(keys["read"])).json(),
        timeout=30,
        what="the group traits as account metadata",
    )
    assert profile["name"] == "Umbrella" and profile["csm"]["email"] == "c@x.io"


async def test_segment_clock_skew_is_corrected(
    client: httpx.AsyncClient, keys: dict[str, str], sandbox: Sandbox
) -> None:
    now = datetime.now(UTC)
    skew = timedelta(hours=5)  # the sender's clock is 5 hours fast
    batch = {
        "sentAt": (now + skew).isoformat(),
        "batch": [
            {
                "type": "track",
                "event": "Login",
                "messageId": "skew-1",
                "userId": "u",
                "timestamp": (now + skew - timedelta(minutes=10)).isoformat(),
                "context": {"groupId": "acct-skew"},
            },
            {"type": "track", "event": "Login", "messageId": "skew-2", "userId": "u"},
        ],
    }
    resp = await client.post("/v1/batch", json=batch, headers={"Authorization": "Basic " + _basic(keys["all"])})
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1 and resp.json()["skipped"][0]["index"] == 1  # no account on skew-2
    (event,) = await consume(sandbox, sandbox.settings.topics.events, 1)
    occurred = datetime.fromisoformat(event["occurred_at"])
    assert abs((occurred - (now - timedelta(minutes=10))).total_seconds()) < 60


def _basic(key: str) -> str:
    import base64

    return base64.b64encode(f"{key}:".encode()).decode()
