"""Signals of live traffic are published at once, not at the next checkpoint interval.

With the checkpoint and sweep intervals at 60 s (an idle scorer checkpoints before each sweep), an account's
escalated tickets of yesterday and a login now (the login closes yesterday, whose escalations raise an
``escalation`` signal) reach the signals topic within seconds. (A replay's signals, about days long past, wait
for the interval: a backfill checkpoints no more often for them.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.end_to_end import sample_events
from services.demo.processes import running
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.integration


async def _send(sandbox: Sandbox, account: str, now: datetime) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for e in sample_events(account, now):
            await producer.send_and_wait(sandbox.settings.topics.events, json.dumps(e).encode(), key=account.encode())
    finally:
        await producer.stop()


async def _signal_accounts(consumer: AIOKafkaConsumer, seen: set[str]) -> set[str]:
    for records in (await consumer.getmany(timeout_ms=200)).values():
        seen.update(json.loads(r.value)["account_id"] for r in records)
    return seen


async def test_live_signals_do_not_wait_for_the_checkpoint_interval(sandbox: Sandbox) -> None:
    env = {**sandbox.env, "CHURNWATCH_CHECKPOINT_INTERVAL_SECONDS": "60", "CHURNWATCH_SWEEP_INTERVAL_SECONDS": "60"}
    consumer = AIOKafkaConsumer(
        sandbox.settings.topics.signals,
        bootstrap_servers=sandbox.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        with running({"scorer": free_port()}, env):
            await _send(sandbox, "live", datetime.now(UTC))
            await await_until(lambda: _has(consumer, seen, "live"), within=20, what="the live signal (start included)")
    finally:
        await consumer.stop()


async def _has(consumer: AIOKafkaConsumer, seen: set[str], account: str) -> bool:
    return account in await _signal_accounts(consumer, seen)
