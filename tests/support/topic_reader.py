"""Reading back the event ids a topic holds, from its start, until a condition on them holds (with a deadline)."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from tests.support.polling import await_until


async def event_ids_on(
    bootstrap: str, topic: str, enough: Callable[[set[str]], bool], *, within: float = 90, what: str
) -> set[str]:
    """Every ``event_id`` read from ``topic`` by the time ``enough(seen)`` holds; fails after ``within`` seconds."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: set[str] = set()
    try:

        async def all_there() -> bool:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                seen.update(json.loads(r.value)["event_id"] for r in records)
            return enough(seen)

        await await_until(all_there, within=within, what=what)
    finally:
        await consumer.stop()
    return seen
