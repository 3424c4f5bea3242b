"""How far a consumer group has got: the topic's end offsets in Kafka against the offsets the group stored in
PostgreSQL (shared/offsets.py). A replay, a backfill or a test waits on this to know the scorer has caught up."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import CommonSettings


async def end_offsets(settings: CommonSettings, topic: str, partitions: int | None = None) -> dict[int, int]:
    partitions = partitions or settings.events_partitions
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(parts)
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        # aiokafka 0.14 raises CancelledError from stop() if its committed-offsets task has not run once yet
        await asyncio.sleep(0)
        await consumer.stop()


async def stored_offsets(engine: AsyncEngine, group: str, topic: str) -> dict[int, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT partition, next_offset FROM consumer_offsets WHERE group_id = :g AND topic = :t"),
            {"g": group, "t": topic},
        )
        return {int(r.partition): int(r.next_offset) for r in rows}


def scorer_group(settings: CommonSettings) -> str:
    return f"{settings.topic_prefix}.scorer"


async def events_left(engine: AsyncEngine, settings: CommonSettings) -> int:
    """Events on the events topic the scorer has not committed yet."""
    ends = await end_offsets(settings, settings.topics.events)
    stored = await stored_offsets(engine, scorer_group(settings), settings.topics.events)
    return sum(max(0, off - stored.get(p, 0)) for p, off in ends.items())


async def caught_up(engine: AsyncEngine, settings: CommonSettings) -> bool:
    return await events_left(engine, settings) == 0
