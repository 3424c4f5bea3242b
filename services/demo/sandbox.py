"""A private corner of the shared Kafka and PostgreSQL: its own topic prefix and database schema.

Tests, benchmarks and each demo run work in one, so they never see each other's data.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from shared.db import build_engine
from shared.kafka import create_topics
from shared.migrate import upgrade_async
from shared.settings import CommonSettings


@dataclass(frozen=True)
class SandboxName:
    topic_prefix: str
    schema: str

    @classmethod
    def fresh(cls, kind: str, tag: str | None = None) -> SandboxName:
        tag = tag or uuid.uuid4().hex[:10]
        return cls(topic_prefix=f"{kind}-{tag}", schema=f"{kind}_{tag}")

    @classmethod
    def named(cls, name: str) -> SandboxName:
        """The sandbox a person names on the command line (``--sandbox trial-1``): topics ``trial-1.*``, schema
        ``trial_1``."""
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", name):
            raise ValueError(f"sandbox name {name!r}: use 1-41 lower-case letters, digits, '-' or '_', from a letter")
        return cls(topic_prefix=name, schema=name.replace("-", "_"))

    @property
    def env(self) -> dict[str, str]:
        """What a service process needs to work in this sandbox."""
        return {"CHURNWATCH_TOPIC_PREFIX": self.topic_prefix, "CHURNWATCH_DATABASE_SCHEMA": self.schema}

    def settings(self, **overrides: object) -> CommonSettings:
        return CommonSettings(topic_prefix=self.topic_prefix, database_schema=self.schema, **overrides)  # type: ignore[arg-type]


async def prepare(settings: CommonSettings) -> None:
    """Migrate the sandbox's schema and create its topics."""
    await upgrade_async(settings)
    await create_topics(settings)


async def drop_schemas(settings: CommonSettings, *schemas: str) -> None:
    engine = build_engine(settings)
    try:
        async with engine.begin() as conn:
            for schema in schemas:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


async def delete_topics(settings: CommonSettings, prefix: str) -> None:
    """Best effort: Kafka deletes topics asynchronously and a missing one is not an error here."""
    await _delete_topics_where(settings, lambda topic: topic.startswith(prefix))


async def delete_orphaned_topics(settings: CommonSettings) -> None:
    """Delete the topics of sandboxes whose schema is gone: runs that were killed before they cleaned up.

    A live sandbox made its schema before its topics and drops it after them, so it is never taken for one.
    """
    engine = build_engine(settings)
    try:
        async with engine.connect() as conn:
            schemas = set((await conn.execute(text("SELECT nspname FROM pg_namespace"))).scalars())
    finally:
        await engine.dispose()

    def orphaned(topic: str) -> bool:
        match = _SANDBOX_TOPIC.match(topic)
        return match is not None and f"{match[1]}_{match[2]}" not in schemas

    await _delete_topics_where(settings, orphaned)


_SANDBOX_TOPIC = re.compile(r"^([a-z]+)-([0-9a-f]{10})\.")  # SandboxName.fresh's "<kind>-<tag>." prefix


async def _delete_topics_where(settings: CommonSettings, doomed: Callable[[str], bool]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if doomed(t)]
        for i in range(0, len(topics), 100):
            with contextlib.suppress(Exception):
                await admin.delete_topics(topics[i : i + 100])
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def private_sandbox(kind: str, **overrides: object) -> AsyncIterator[tuple[SandboxName, CommonSettings]]:
    """A fresh, prepared sandbox, whose topics and schema are deleted afterwards."""
    name = SandboxName.fresh(kind)
    settings = name.settings(**overrides)
    await prepare(settings)
    try:
        yield name, settings
    finally:
        await delete_topics(settings, f"{name.topic_prefix}.")
        await drop_schemas(settings, name.schema)
