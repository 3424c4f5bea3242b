"""Consumer positions kept in PostgreSQL, beside the state they belong to (see shared/consumer_loop.py).

The Kafka-side commit is only for lag monitoring; these rows are the truth a restarted or newly assigned
consumer seeks to, and the claim below is what fences a slow instance that lost a partition.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import consumer_offsets


class Fenced(Exception):
    """Another instance already committed past this batch's start: its effects must not be written."""


async def load_offsets(
    session: AsyncSession, group_id: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    wanted = set(partitions)
    topics = {tp.topic for tp in wanted}
    rows = await session.execute(
        select(consumer_offsets.c.topic, consumer_offsets.c.partition, consumer_offsets.c.next_offset).where(
            consumer_offsets.c.group_id == group_id, consumer_offsets.c.topic.in_(topics)
        )
    )
    stored = {TopicPartition(r.topic, r.partition): int(r.next_offset) for r in rows}
    return {tp: off for tp, off in stored.items() if tp in wanted}


# One statement for all of a batch's partitions: rows are upserted in (topic, partition) order, so two
# instances racing for the same partitions take the row locks in the same order (no deadlock), and each
# row moves only if its stored offset is not already past the batch's first offset for that partition.
_CLAIM = text(
    "WITH wanted AS (SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]),"
    " CAST(:first AS bigint[]), CAST(:following AS bigint[])) AS w(topic, partition, first_offset, next_offset))"
    " INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)"
    " SELECT :group_id, topic, partition, next_offset FROM wanted ORDER BY topic, partition"
    " ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
    " WHERE consumer_offsets.next_offset <= (SELECT w.first_offset FROM wanted w"
    " WHERE w.topic = excluded.topic AND w.partition = excluded.partition)"
    " RETURNING topic, partition"
)


async def claim_offsets(
    session: AsyncSession, group_id: str, first: dict[TopicPartition, int], following: dict[TopicPartition, int]
) -> None:
    """Move each partition's stored offset to ``following`` unless it is already past ``first``; else Fenced.

    The upsert takes the row locks, so two instances racing for one partition serialise here and the second
    sees the first's offset.
    """
    if not first:
        return
    parts = sorted(first, key=lambda t: (t.topic, t.partition))
    claimed = await session.execute(
        _CLAIM,
        {
            "group_id": group_id,
            "topics": [tp.topic for tp in parts],
            "partitions": [tp.partition for tp in parts],
            "first": [first[tp] for tp in parts],
            "following": [following[tp] for tp in parts],
        },
    )
    moved = {TopicPartition(r.topic, r.partition) for r in claimed}
    lost = [tp for tp in parts if tp not in moved]
    if lost:
        tp = lost[0]
        raise Fenced(f"{tp.topic}[{tp.partition}] was already committed past offset {first[tp]}")
