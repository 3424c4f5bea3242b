"""Integration tests run against the real local Kafka and PostgreSQL started by deploy/local-stack.sh.

If either cannot start, every integration test fails with the script's output: no silent skip.
Each test gets its own topic prefix and database schema, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.demo.processes import REPO_ROOT
from services.demo.sandbox import delete_orphaned_topics, private_sandbox
from shared.db import build_engine
from shared.settings import CommonSettings
from shared.signals import RiskSignal
from tests.support.read_access import SERVICE_TOKEN
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
        else:  # topics of earlier runs that were killed before they cleaned up
            asyncio.run(delete_orphaned_topics(CommonSettings()))
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
    async with private_sandbox("test", events_partitions=3) as (name, settings):
        engine = build_engine(settings)
        try:
            env = {**name.env, "CHURNWATCH_EVENTS_PARTITIONS": "3", "CHURNWATCH_SERVICE_TOKEN": SERVICE_TOKEN}
            yield Sandbox(settings, env, engine)
        finally:
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


@pytest.fixture
async def produce(sandbox: Sandbox) -> AsyncIterator[Callable[..., Any]]:
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()

    async def send(*signals: RiskSignal) -> None:
        for s in signals:
            await producer.send_and_wait(
                sandbox.settings.topics.signals, s.model_dump_json().encode(), key=s.account_id.encode()
            )

    try:
        yield send
    finally:
        await producer.stop()
