"""The sweep closes idle accounts' days by their own partition's clock while events flow (real PostgreSQL).

In a replay one partition can be consumed days ahead of another; closing the lagging partition's accounts by
the leading clock would decide days whose events are still unread (every account "inactive"). Once caught up,
every partition goes by the latest clock, so a partition whose accounts all went silent still sees days pass.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text

from services.scorer.evaluate import ScoringConfig
from services.scorer.processor import ScoringProcessor
from shared.db import session_factory
from shared.events import EVENT_ADAPTER, encode_event
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration

START = datetime(2026, 2, 2, 10, tzinfo=UTC)


def _record(topic: str, partition: int, offset: int, account: str, day: int) -> ConsumerRecord[bytes, bytes]:
    event = EVENT_ADAPTER.validate_python(
        {"kind": "usage", "action": "login", "event_id": f"{account}-{day}", "account_id": account}
        | {"user_id": "u", "occurred_at": (START + timedelta(days=day)).isoformat()}
    )
    value = encode_event(event)
    return ConsumerRecord(topic, partition, offset, 0, 0, account.encode(), value, None, 1, len(value), ())


async def _closed_on(sandbox: Sandbox, account: str) -> date:
    async with sandbox.engine.connect() as conn:
        sql = text("SELECT closed_on FROM account_health WHERE account_id = :a")
        found: date = (await conn.execute(sql, {"a": account})).scalar_one()
        return found


async def test_the_sweep_goes_by_each_partitions_clock_until_caught_up(sandbox: Sandbox) -> None:
    sessions = session_factory(sandbox.engine)
    topics = sandbox.settings.topics
    producer: Any = None  # the sweep publishes nothing
    processor = ScoringProcessor(topics=topics, producer=producer, sessions=sessions, config=ScoringConfig())
    await processor.assign([TopicPartition(topics.events, 0), TopicPartition(topics.events, 1)])
    ahead = [_record(topics.events, 0, d, "ahead", d) for d in range(21)]  # partition 0 read to day 20
    behind = [_record(topics.events, 1, d, "behind", d) for d in range(6)]  # partition 1 only to day 5
    assert await processor.fold([*ahead, *behind]) == []
    await processor.checkpoint()
    assert await _closed_on(sandbox, "behind") == (START + timedelta(days=4)).date()

    await processor.sweep(caught_up=False)
    assert await _closed_on(sandbox, "behind") == (START + timedelta(days=4)).date(), "closed by another's clock"

    await processor.sweep(caught_up=True)
    assert await _closed_on(sandbox, "behind") == (START + timedelta(days=19)).date()
