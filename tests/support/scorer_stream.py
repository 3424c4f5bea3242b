"""Helpers for the scorer's integration tests and benchmark: write events straight to Kafka, wait until the
scorer's stored offsets reach the end of the topic, and recompute the expected state from scratch."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scorer.codec import state_to_json
from services.scorer.dedup import KEY_BYTES
from services.scorer.windows import AccountState, WindowRules, apply_event, too_late
from shared.consumer_progress import end_offsets
from shared.events import decode_event
from shared.settings import CommonSettings

END = datetime(2026, 11, 20, 12, tzinfo=UTC)


def account_events(account: str, *, days: int = 35, seed: int = 1, end: datetime = END) -> list[dict[str, Any]]:
    """A month of use for one account, in event-time order; some accounts slide in their last week."""
    rng = random.Random(f"{seed}:{account}")
    sliding = rng.random() < 0.4
    out: list[dict[str, Any]] = []
    for d in range(days):
        at = end - timedelta(days=days - 1 - d)
        quiet = sliding and d >= days - 7
        for u in range(1 if quiet else rng.randint(2, 5)):
            base = {"account_id": account, "user_id": f"{account}-u{u}", "occurred_at": at.isoformat()}
            out.append({"kind": "usage", "action": "login", "event_id": f"{account}-{d}-l{u}", **base})
            feature = {"feature": rng.choice(["reports", "alerts", "exports"]), "quantity": rng.randint(1, 9)}
            out.append(
                {"kind": "usage", "action": "feature_used", "event_id": f"{account}-{d}-f{u}", **base, **feature}
            )
        if quiet and rng.random() < 0.6:
            t = {"ticket_id": f"{account}-T{d}", "priority": "urgent", "occurred_at": at.isoformat()}
            out.append(
                {"kind": "ticket", "action": "opened", "event_id": f"{account}-{d}-t", "account_id": account, **t}
            )
    return out


async def produce(settings: CommonSettings, events: Iterable[dict[str, Any]], raw: Sequence[bytes] = ()) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(settings.topics.events, key=e["account_id"].encode(), value=json.dumps(e).encode())
            for e in events
        ]
        futures += [await producer.send(settings.topics.events, key=b"junk", value=r) for r in raw]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def stored_states(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT account_id, state FROM account_health"))
        return {r.account_id: r.state for r in rows}


async def seen_event_count(engine: AsyncEngine) -> int:
    """How many distinct event ids the scorer has recorded as counted."""
    async with engine.connect() as conn:
        total = (await conn.execute(text("SELECT coalesce(sum(octet_length(ids)), 0) FROM seen_event_days"))).scalar()
    return int(total or 0) // KEY_BYTES


def recompute(events: Iterable[dict[str, Any]], rules: WindowRules) -> dict[str, Any]:
    """The from-scratch answer: the events in the order they were sent, each id counted once per account while
    its first use can still count (``dedup``); an event too late to count is counted as late, seen or not."""
    states: dict[str, AccountState] = {}
    counted_on: dict[tuple[str, str], date] = {}
    for raw in events:
        e = decode_event(json.dumps(raw).encode())
        state = states.setdefault(e.account_id, AccountState())
        first = counted_on.get((e.account_id, e.event_id))
        if first is not None and not any(too_late(state.watermark, d, rules) for d in (e.occurred_at.date(), first)):
            continue  # a copy of an event that still counts
        if apply_event(state, e, rules):
            counted_on[e.account_id, e.event_id] = e.occurred_at.date()
    return {a: state_to_json(s) for a, s in states.items()}


async def read_topic(settings: CommonSettings, topic: str) -> list[Any]:
    """Every record on ``topic`` right now (for the signals and dead-letter checks)."""
    ends = await end_offsets(settings, topic, 1 if topic == settings.topics.dead_letter else None)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in ends]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[Any] = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp.partition]]:
            for recs in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(recs)
        return out
    finally:
        await consumer.stop()
