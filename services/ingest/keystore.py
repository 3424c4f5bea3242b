"""API keys in PostgreSQL (hashes only), and a short-lived in-process cache so auth is not a query per request."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.apikeys import ApiKey, NewKey, Scope, generate_key, hash_key
from services.ingest.tables import api_keys
from shared.db import build_engine
from shared.settings import CommonSettings


def _to_key(row: Any) -> ApiKey:
    return ApiKey(
        prefix=row.prefix,
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def create_key(engine: AsyncEngine, *, name: str, scopes: frozenset[Scope]) -> tuple[NewKey, ApiKey]:
    new = generate_key()
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                api_keys.insert()
                .values(prefix=new.prefix, key_hash=new.key_hash, name=name, scopes=sorted(s.value for s in scopes))
                .returning(*api_keys.c)
            )
        ).one()
    return new, _to_key(row)


async def list_keys(engine: AsyncEngine) -> list[ApiKey]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
    return [_to_key(r) for r in rows]


async def revoke_key(engine: AsyncEngine, prefix: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            update(api_keys)
            .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


class KeyStore:
    """Looks keys up by hash; remembers answers (found or not) for ``ttl`` seconds, so a revocation takes
    effect within ``ttl`` and unknown keys do not each cost a query."""

    def __init__(
        self, engine: AsyncEngine, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def find(self, secret_key: str) -> ApiKey | None:
        digest = hash_key(secret_key)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == digest))).one_or_none()
        key = _to_key(row) if row is not None else None
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[digest] = (now + self._ttl, key)
        return key


async def issue_key(settings: CommonSettings, *, name: str, scopes: frozenset[Scope]) -> str:
    """Creates a key with its own short-lived engine and returns the secret: for the demo and tests."""
    engine = build_engine(settings, pool_size=1)
    try:
        new, _ = await create_key(engine, name=name, scopes=scopes)
        return new.secret_key
    finally:
        await engine.dispose()
