"""API keys in PostgreSQL (hashes only), and the in-process verdict cache every service checks keys through.

The table is ingest's (``ingest_api_keys``, created by services/ingest/migrations) in the service's schema; the
rules for what may be answered from memory, and for how long during a database outage, are in
``shared.key_cache``. One lookup per key hash is in flight at a time, however many requests present it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Column, DateTime, MetaData, String, Table, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.api_keys import ApiKey, NewKey, Scope, generate_key, hash_key
from shared.db import build_engine
from shared.key_cache import (
    Action,
    CachePolicy,
    DatabaseState,
    Decision,
    Verdict,
    decide_lookup,
    usable_while_down,
)
from shared.settings import CommonSettings
from shared.state_log import StateLog

log = logging.getLogger(__name__)

metadata = MetaData()

# Only the SHA-256 of a key is kept; the prefix names it in listings and logs.
api_keys = Table(
    "ingest_api_keys",
    metadata,
    Column("prefix", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

KEY_LOOKUPS = Counter(
    "churnwatch_key_lookups_total",
    "API key checks by how they were answered: cached, database, stale (database down, key known valid), "
    "unavailable (database down, key not known valid: 503)",
    ["answer"],
)


class KeyStoreUnavailable(Exception):
    """The database cannot be asked and nothing usable is cached for this key."""


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


async def issue_key(settings: CommonSettings, *, name: str, scopes: frozenset[Scope]) -> str:
    """Creates a key with its own short-lived engine and returns the secret: for the demo and tests."""
    engine = build_engine(settings, pool_size=1)
    try:
        new, _ = await create_key(engine, name=name, scopes=scopes)
        return new.secret_key
    finally:
        await engine.dispose()


class KeyStore:
    """Looks keys up by hash, remembering the answers (see ``shared.key_cache`` for what is answered from memory).

    Valid and not-found verdicts are kept apart, each bounded by ``max_entries``, so a flood of made-up keys can
    never push the valid ones out (which would stop intake during an outage)."""

    def __init__(
        self,
        engine: AsyncEngine,
        policy: CachePolicy,
        *,
        lookup_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._engine = engine
        self.policy = policy
        self._lookup_timeout = lookup_timeout
        self._clock = clock
        self._max_entries = max_entries
        self._known: dict[str, Verdict] = {}  # keys found (valid or revoked)
        self._unknown: dict[str, Verdict] = {}  # hashes not found
        self._in_flight: dict[str, asyncio.Future[Verdict]] = {}
        self._probes: set[asyncio.Task[Any]] = set()
        self.database = DatabaseState()
        self.database_log = StateLog(log, "API key database")

    async def find(self, secret_key: str) -> ApiKey | None:
        """The key, or None when there is no such key. Raises KeyStoreUnavailable."""
        digest = hash_key(secret_key)
        decision = decide_lookup(self._verdict(digest), self.database, self._clock(), self.policy)
        if decision.action is Action.ASK:
            try:
                verdict = await self._ask(digest)
            except KeyStoreUnavailable:  # the database is down now: a key known valid may still be used
                decision = decide_lookup(self._verdict(digest), self.database, self._clock(), self.policy)
                if decision.action is Action.ASK:
                    decision = Decision(Action.UNAVAILABLE)
            else:
                KEY_LOOKUPS.labels("database").inc()
                return verdict.key
        return self._answer(decision, digest)

    def _answer(self, decision: Decision, digest: str) -> ApiKey | None:
        if decision.action is Action.USE_STALE:
            KEY_LOOKUPS.labels("stale").inc()
            if decision.probe:
                self._probe(digest)
            return decision.key
        if decision.action is Action.UNAVAILABLE:
            KEY_LOOKUPS.labels("unavailable").inc()
            raise KeyStoreUnavailable("the key database is unavailable and this key is not known to be valid")
        KEY_LOOKUPS.labels("cached").inc()
        return decision.key

    def usable_while_down(self) -> int:
        """How many keys would still work if the database went (or stayed) away now."""
        return usable_while_down(list(self._known.values()), self._clock(), self.policy)

    def _verdict(self, digest: str) -> Verdict | None:
        return self._known.get(digest) or self._unknown.get(digest)

    async def _ask(self, digest: str) -> Verdict:
        """One lookup per hash at a time; the others wait for its answer."""
        pending = self._in_flight.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(digest))
            self._in_flight[digest] = pending
            pending.add_done_callback(lambda done: self._lookup_done(digest, done))
        try:
            return await asyncio.shield(pending)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise KeyStoreUnavailable(f"API key lookup failed: {type(exc).__name__}") from None

    def _lookup_done(self, digest: str, done: asyncio.Future[Verdict]) -> None:
        self._in_flight.pop(digest, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter was cancelled

    def _probe(self, digest: str) -> None:
        if digest in self._in_flight:
            return
        self.database.next_attempt_at = self._clock() + self.policy.retry_seconds  # one probe per interval
        task = asyncio.ensure_future(self._ask(digest))
        self._probes.add(task)
        task.add_done_callback(self._probe_done)

    def _probe_done(self, task: asyncio.Task[Any]) -> None:
        self._probes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a failed probe is already in the state log

    async def _lookup(self, digest: str) -> Verdict:
        try:
            async with asyncio.timeout(self._lookup_timeout):
                async with self._engine.connect() as conn:
                    row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == digest))).one_or_none()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            self.database.failed(self._clock(), self.policy)
            self.database_log.failing(
                f"{type(exc).__name__}; serving keys known valid for up to "
                f"{self.policy.ttl + self.policy.stale_grace:.0f} s after their last check"
            )
            raise
        self.database.answered()
        self.database_log.healthy()
        verdict = Verdict(_to_key(row) if row is not None else None, self._clock())
        self._remember(digest, verdict)
        return verdict

    def _remember(self, digest: str, verdict: Verdict) -> None:
        table = self._known if verdict.key is not None else self._unknown
        if digest not in table and len(table) >= self._max_entries:
            table.clear()
        table[digest] = verdict
        if verdict.key is not None:
            self._unknown.pop(digest, None)
        else:
            self._known.pop(digest, None)
