"""The shared read check (shared.key_auth.require_scope) on a tiny FastAPI app, as the scorer's and alerter's read
APIs use it: keys from the real PostgreSQL key store; 401 without or with an unknown/revoked key, 403 without the
``read`` scope, 200 with it or with the console's service token; off with CHURNWATCH_AUTH_REQUIRED=false."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from shared.api_keys import Scope
from shared.key_auth import Caller, KeyAuth, KeyAuthSettings, require_scope
from shared.key_store import issue_key, revoke_key
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration

SERVICE_TOKEN = "console-" + "0123456789abcdef" * 3


def read_api(settings: KeyAuthSettings, sandbox: Sandbox) -> FastAPI:
    """What a service's app factory does to opt in: one KeyAuth on app.state, one dependency on the router."""
    app = FastAPI()
    app.state.key_auth = KeyAuth.for_service(settings, sandbox.engine)
    router = APIRouter()

    @router.get("/v1/accounts")
    async def accounts() -> dict[str, str]:
        return {"accounts": "all of them"}

    @router.get("/v1/whoami")
    async def whoami(caller: Caller = Depends(require_scope(Scope.READ))) -> dict[str, str]:  # noqa: B008
        return {"caller": caller.name}

    app.include_router(router, dependencies=[Depends(require_scope(Scope.READ))])
    return app


Client = Callable[[KeyAuthSettings], httpx.AsyncClient]


@pytest.fixture
async def client_for(sandbox: Sandbox) -> AsyncIterator[Client]:
    clients: list[httpx.AsyncClient] = []

    def make(settings: KeyAuthSettings) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=read_api(settings, sandbox))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://scorer"))
        return clients[-1]

    yield make
    for c in clients:
        await c.aclose()


async def test_reads_need_a_key_with_the_read_scope(client_for: Client, sandbox: Sandbox) -> None:
    client = client_for(KeyAuthSettings(key_cache_seconds=0, service_token=SERVICE_TOKEN))
    reader = await issue_key(sandbox.settings, name="reader", scopes=frozenset({Scope.READ}))
    writer = await issue_key(sandbox.settings, name="writer", scopes=frozenset({Scope.WRITE_EVENTS}))

    missing = await client.get("/v1/accounts")
    assert missing.status_code == 401 and missing.json()["detail"]["code"] == "unauthorized"
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    assert (await client.get("/v1/accounts", headers={"Authorization": "Bearer cw_nope_nope"})).status_code == 401
    wrong_scope = await client.get("/v1/accounts", headers={"X-API-Key": writer})
    assert wrong_scope.status_code == 403 and wrong_scope.json()["detail"]["code"] == "forbidden"

    ok = await client.get("/v1/accounts", headers={"Authorization": f"Bearer {reader}"})
    assert ok.status_code == 200 and ok.json() == {"accounts": "all of them"}
    who = await client.get("/v1/whoami", auth=(reader, ""))  # HTTP Basic, key as user name (Segment style)
    assert who.status_code == 200 and who.json()["caller"] == f"key:{reader.split('_')[1]}"
    console = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
    assert console.status_code == 200 and console.json()["caller"] == "service"

    assert await revoke_key(sandbox.engine, reader.split("_")[1])
    assert (await client.get("/v1/accounts", headers={"Authorization": f"Bearer {reader}"})).status_code == 401


async def test_auth_off_lets_everyone_read(client_for: Client) -> None:
    client = client_for(KeyAuthSettings(auth_required=False))
    assert (await client.get("/v1/whoami")).json() == {"caller": "anonymous"}


def test_a_short_service_token_refuses_to_start(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        KeyAuth.for_service(KeyAuthSettings(service_token="secret"), sandbox.engine)
