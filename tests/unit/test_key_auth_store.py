"""The key store's I/O edge with a stand-in engine: one lookup per key however many requests present it, stale
verdicts served while the database is away (probing it once per interval), unknown keys never let in, and a
flood of made-up keys cannot push the valid ones out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.api_keys import generate_key
from shared.key_cache import CachePolicy
from shared.key_store import KeyStore, KeyStoreUnavailable
from tests.support.polling import await_until


@dataclass
class Row:
    prefix: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class FakeEngine:
    """Answers ``select ... where key_hash = ?`` from a dict; ``down`` makes every connection fail."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.down = False
        self.lookups = 0
        self.gate = asyncio.Event()
        self.gate.set()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeEngine]:
        self.lookups += 1
        await self.gate.wait()
        if self.down:
            raise ConnectionRefusedError("database down")
        yield self

    async def execute(self, statement: Any) -> FakeEngine:
        self._digest = statement.compile().params["key_hash_1"]
        return self

    def one_or_none(self) -> Row | None:
        return self.rows.get(self._digest)


async def _now(value: bool) -> bool:
    return value


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> tuple[FakeEngine, Clock, KeyStore, str]:
    engine, clock = FakeEngine(), Clock()
    store = KeyStore(cast(AsyncEngine, engine), CachePolicy(ttl=10, stale_grace=60, retry_seconds=1), clock=clock)
    new = generate_key()
    engine.rows[new.key_hash] = Row(new.prefix, "billing", ["events:write"], datetime(2026, 11, 1, tzinfo=UTC))
    return engine, clock, store, new.secret_key


async def test_concurrent_requests_share_one_lookup(world: tuple[FakeEngine, Clock, KeyStore, str]) -> None:
    engine, _, store, secret = world
    engine.gate.clear()
    finds = [asyncio.create_task(store.find(secret)) for _ in range(50)]
    await await_until(lambda: _now(engine.lookups == 1), within=5, what="the first lookup to start", interval=0.001)
    engine.gate.set()
    keys = await asyncio.gather(*finds)
    assert engine.lookups == 1 and all(k is not None and k.name == "billing" for k in keys)


async def test_database_down_serves_known_keys_for_the_grace_and_never_unknown_ones(
    world: tuple[FakeEngine, Clock, KeyStore, str],
) -> None:
    engine, clock, store, secret = world
    assert await store.find(secret) is not None
    engine.down = True
    clock.now += 30  # past the ttl: the database is asked, fails, the known key is used anyway
    assert await store.find(secret) is not None
    with pytest.raises(KeyStoreUnavailable):
        await store.find(generate_key().secret_key)
    lookups = engine.lookups
    for _ in range(100):  # within one retry interval: no more lookups, answered from memory
        assert await store.find(secret) is not None
        with pytest.raises(KeyStoreUnavailable):
            await store.find("cw_made_up")
    assert engine.lookups == lookups
    assert store.usable_while_down() == 1
    clock.now += 41  # 71 s after the last check: past ttl + grace
    with pytest.raises(KeyStoreUnavailable):
        await store.find(secret)
    assert store.usable_while_down() == 0


async def test_a_revocation_seen_when_the_database_is_back_is_final(
    world: tuple[FakeEngine, Clock, KeyStore, str],
) -> None:
    engine, clock, store, secret = world
    assert await store.find(secret) is not None
    engine.down = True
    clock.now += 11
    assert await store.find(secret) is not None  # stale
    for row in engine.rows.values():
        row.revoked_at = datetime(2026, 12, 1, tzinfo=UTC)
    engine.down = False
    clock.now += 1  # the probe is due: it runs in the background and sees the revocation
    assert await store.find(secret) is not None  # this request still had the stale verdict ...

    async def refused() -> bool:
        key = await store.find(secret)
        return key is not None and not key.active

    await await_until(refused, within=5, what="the revocation to be seen", interval=0.001)  # ... then refused


async def test_made_up_keys_cannot_push_out_the_valid_ones(world: tuple[FakeEngine, Clock, KeyStore, str]) -> None:
    engine, _, _, secret = world
    store = KeyStore(cast(AsyncEngine, engine), CachePolicy(ttl=10, stale_grace=60), max_entries=5)
    assert await store.find(secret) is not None
    for n in range(50):
        assert await store.find(f"cw_fake_{n}") is None
    engine.down = True
    assert store.usable_while_down() == 1
