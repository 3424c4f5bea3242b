"""Integration tests run against the real local Kafka and PostgreSQL started by deploy/local-stack.sh.

If either cannot start, every integration test fails with the script's output: no silent skip.
Each test gets its own topic prefix and database schema, so tests never see each other's data.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.demo.processes import REPO_ROOT
from shared.db import build_engine
from shared.kafka import create_topics
from shared.migrate import upgrade_async
from shared.settings import CommonSettings
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

_stack_error: str | None = None
_stack_checked = False


@pytest.fixture(scope="session")
def local_stack() -> None:
    global _stack_checked, _stack_error
    if not _stack_checked:
        _stack_checked = True
        proc = subprocess.run(
            ["bash", str(REPO_ROOT / "deploy" / "local-stack.sh"), "up"], capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            _stack_error = f"deploy/local-stack.sh up failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    if _stack_error:
        pytest.fail(f"the local Kafka/PostgreSQL stack is required and did not start:\n{_stack_error}")


@dataclass(frozen=True)
class Sandbox:
    """One test's private corner of the shared broker and database."""

    settings: CommonSettings
    env: dict[str, str]
    engine: AsyncEngine


@pytest.fixture
async def sandbox(local_stack: None) -> AsyncIterator[Sandbox]:
    tag = uuid.uuid4().hex[:10]
    env = {
        "CHURNWATCH_TOPIC_PREFIX": f"test-{tag}",
        "CHURNWATCH_DATABASE_SCHEMA": f"test_{tag}",
        "CHURNWATCH_EVENTS_PARTITIONS": "3",
    }
    settings = CommonSettings(
        topic_prefix=env["CHURNWATCH_TOPIC_PREFIX"],
        database_schema=env["CHURNWATCH_DATABASE_SCHEMA"],
        events_partitions=3,
    )
    await upgrade_async(settings)
    await create_topics(settings)
    engine = build_engine(settings)
    try:
        yield Sandbox(settings, env, engine)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        await engine.dispose()


@pytest.fixture
def slack() -> Iterator[SlackWebhookServer]:
    server = SlackWebhookServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in ("ingest", "scorer", "alerter")}
