"""Partitions assigned while PostgreSQL is unreachable (issue 13, bug C), and the consumer-lag gauge.

A rebalance callback that cannot read PostgreSQL used to leave its partitions assigned by Kafka but never claimed
or sought: the scorer folded nothing of them again until the next rebalance. Now they stay paused and the loop
claims them again with backoff. Each loop here runs in-process on the real Kafka, with its PostgreSQL behind a
TCP proxy that is cut for that loop only; a plain consumer joining and leaving the group makes the rebalances.
Also here, behind the same proxy: a scorer checkpoint whose transaction fails while the next batches fold.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scorer.evaluate import ScoringConfig
from services.scorer.partition_loop import ScorerLoop
from services.scorer.processor import ScoringProcessor
from shared.consumer_loop import ConsumerLoop, Rejected
from shared.consumer_progress import caught_up, scorer_group, stored_offsets
from shared.db import build_engine, session_factory
from shared.kafka import DeadLetterPublisher
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.scorer_stream import account_events, produce, read_topic, recompute, seen_event_count, stored_states
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

FAST_GROUP = {"heartbeat_interval_ms": 300, "session_timeout_ms": 6000}  # rebalances noticed within a second


@dataclass
class Rig:
    """A loop's PostgreSQL behind a proxy, a producer for what it publishes, and a consumer to barge in."""

    sandbox: Sandbox
    proxy: TcpProxy
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer

    @property
    def dead_letter(self) -> DeadLetterPublisher:
        return DeadLetterPublisher(self.producer, self.sandbox.settings.topics.dead_letter)

    def topics(self) -> list[str]:
        t = self.sandbox.settings.topics
        return [t.accounts, t.events]

    @contextlib.asynccontextmanager
    async def intruder(self, group_id: str) -> AsyncIterator[AIOKafkaConsumer]:
        """Another member of the group: it joins (taking partitions away) and, on leaving, gives them back."""
        consumer = AIOKafkaConsumer(
            *self.topics(), bootstrap_servers=self.sandbox.settings.kafka_bootstrap_servers, group_id=group_id,
            enable_auto_commit=False, **FAST_GROUP,
        )  # fmt: skip
        await consumer.start()
        try:
            await await_until(_assigned(consumer), within=30, what="the intruder to get partitions")
            yield consumer
        finally:
            await consumer.stop()


def _assigned(consumer: AIOKafkaConsumer) -> Any:
    async def check() -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consumer.getmany(timeout_ms=100), 1)  # keeps it a live member
        return bool(consumer.assignment())

    return check


@pytest.fixture
async def rig(sandbox: Sandbox) -> AsyncIterator[Rig]:
    url = make_url(sandbox.settings.database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = build_engine(sandbox.settings.model_copy(update={"database_url": proxied}))
        producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
        await producer.start()
        try:
            yield Rig(sandbox, proxy, session_factory(engine), producer)
        finally:
            proxy.restore()
            await producer.stop()
            await engine.dispose()


class RecordingProcessor(ScoringProcessor):
    """The scorer's processor, noting each claim attempt and whether PostgreSQL answered it."""

    claims: list[tuple[frozenset[TopicPartition], bool]]

    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        try:
            stored = await super().assign(tps)
        except Exception:
            self.claims.append((frozenset(tps), False))
            raise
        self.claims.append((frozenset(tps), True))
        return stored


def _lag(group: str, tp: TopicPartition) -> float | None:
    labels = {"group": group, "topic": tp.topic, "partition": str(tp.partition)}
    return REGISTRY.get_sample_value("churnwatch_consumer_lag", labels)


def _lag_is_zero(group: str, partitions: Sequence[TopicPartition]) -> Any:
    async def check() -> bool:
        return all(_lag(group, tp) == 0 for tp in partitions)

    return check


async def _outbox_empty(sandbox: Sandbox) -> bool:
    async with sandbox.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM signal_outbox"))).scalar_one()) == 0


@contextlib.asynccontextmanager
async def _running(loop: ScorerLoop | ConsumerLoop) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_partitions_assigned_while_postgres_is_down_are_claimed_once_it_is_back(rig: Rig) -> None:
    s = rig.sandbox.settings
    group = scorer_group(s)
    config = ScoringConfig()
    processor = RecordingProcessor(
        topics=s.topics, producer=rig.producer, sessions=rig.sessions, config=config, group_id=group,
        sweep_interval_s=3600, prune_interval_s=3600,
    )  # fmt: skip
    processor.claims = []
    loop = ScorerLoop(
        bootstrap_servers=s.kafka_bootstrap_servers, topics=rig.topics(), processor=processor,
        dead_letter=rig.dead_letter, checkpoint_interval_s=0.2, retry_backoff_s=0.2, consumer_options=FAST_GROUP,
    )  # fmt: skip
    per_account = {a: account_events(a, days=20) for a in (f"acct-{n:02d}" for n in range(12))}
    first = [e for evs in per_account.values() for e in evs[: len(evs) // 2]]
    second = [e for evs in per_account.values() for e in evs[len(evs) // 2 :]] + first[::5]  # and duplicates
    events_tps = [TopicPartition(s.topics.events, p) for p in range(s.events_partitions)]
    async with _running(loop):
        await produce(s, first)
        await await_until(lambda: caught_up(rig.sandbox.engine, s), within=60, what="the first half folded")
        await await_until(lambda: _outbox_empty(rig.sandbox), within=30, what="its signals published")
        await await_until(_lag_is_zero(group, events_tps), within=30, what="lag 0 on every events partition")

        rig.proxy.cut()  # the loop is idle: nothing to checkpoint, so the callbacks run while PostgreSQL is away
        claims_before = len(processor.claims)
        async with rig.intruder(group) as intruder:
            taken = {tp for tp in intruder.assignment() if tp.topic == s.topics.events}
            await await_until(
                _no_series(group, taken), within=30, what=f"lag series of the revoked {sorted(taken)} removed"
            )  # fmt: skip
        everything = frozenset(events_tps)

        async def claim_failed_for_all() -> bool:
            return any(not ok and everything <= tps for tps, ok in processor.claims[claims_before:])

        await await_until(claim_failed_for_all, within=30, what="a claim of every partition refused (database cut)")
        await produce(s, second)
        rig.proxy.restore()
        await await_until(lambda: caught_up(rig.sandbox.engine, s), within=60, what="the partitions claimed again")
        await await_until(_lag_is_zero(group, events_tps), within=30, what="lag back to 0 once caught up")
        assert loop.unclaimed == set()

    expected = recompute(first + second, config.rules)
    assert await stored_states(rig.sandbox.engine) == expected, "events lost or counted twice across the outage"


def _no_series(group: str, partitions: set[TopicPartition]) -> Any:
    async def check() -> bool:
        return all(_lag(group, tp) is None for tp in partitions)

    return check


class CountingProcessor:
    """A batch processor that notes each record once its batch committed."""

    def __init__(self) -> None:
        self.committed: Counter[tuple[int, int]] = Counter()
        self._pending: list[tuple[int, int]] = []

    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        self._pending = [(r.partition, r.offset) for r in records]
        return []

    async def after_commit(self) -> None:
        self.committed.update(self._pending)
        self._pending = []

    async def on_idle(self) -> None:
        return None

    def on_partitions_revoked(self, partitions: Any) -> None:
        return None


async def test_shared_loop_seeks_partitions_assigned_while_postgres_is_down(rig: Rig) -> None:
    s = rig.sandbox.settings
    group = f"{s.topic_prefix}.claims"
    processor = CountingProcessor()
    loop = ConsumerLoop(
        bootstrap_servers=s.kafka_bootstrap_servers, group_id=group, topics=[s.topics.events], sessions=rig.sessions,
        processor=processor, dead_letter=rig.dead_letter, max_batch=50, retry_backoff_s=0.2,
        consumer_options=FAST_GROUP,
    )  # fmt: skip
    events = [e for a in ("a", "b", "c", "d", "e", "f") for e in account_events(a, days=6)]
    tps = [TopicPartition(s.topics.events, p) for p in range(s.events_partitions)]

    async def processed(n: int) -> bool:
        return sum(processor.committed.values()) >= n

    async with _running(loop):
        await produce(s, events[:100])
        await await_until(lambda: processed(100), within=60, what="the first 100 records processed")
        await await_until(_lag_is_zero(group, tps), within=30, what="lag 0 on every partition")
        rig.proxy.cut()
        async with rig.intruder(group) as intruder:
            taken = set(intruder.assignment())
            await await_until(_no_series(group, taken), within=30, what="revoked partitions' lag removed")
        await await_until(
            lambda: _all_paused(loop, tps), within=30, what="every partition assigned back and paused, unsought"
        )  # fmt: skip
        await produce(s, events[100:])
        rig.proxy.restore()
        await await_until(lambda: processed(len(events)), within=60, what="every record processed once it is back")
        await await_until(_lag_is_zero(group, tps), within=30, what="lag back to 0")
    assert max(processor.committed.values()) == 1, "a record was processed twice"
    assert sum(processor.committed.values()) == len(events)


async def _all_paused(loop: ConsumerLoop, tps: Sequence[TopicPartition]) -> bool:
    return set(tps) <= loop.consumer.assignment() and set(tps) <= set(loop.consumer.paused())


async def test_a_checkpoint_that_fails_while_the_next_batches_fold_is_written_with_them(rig: Rig) -> None:
    """A checkpoint's transaction runs while the loop folds on (``wait=False``). PostgreSQL cut under it: its
    rows are pending again under what was folded since, and the next checkpoint (which waits, the last having
    failed) writes both: the state, the counted event keys and the offsets of one fold of everything."""
    s = rig.sandbox.settings
    config = ScoringConfig()
    processor = ScoringProcessor(
        topics=s.topics, producer=rig.producer, sessions=rig.sessions, config=config, group_id=scorer_group(s),
        sweep_interval_s=3600, prune_interval_s=3600,
    )  # fmt: skip
    per_account = {a: account_events(a, days=20) for a in (f"acct-{n:02d}" for n in range(12))}
    first = [e for evs in per_account.values() for e in evs[: len(evs) // 2]]
    second = [e for evs in per_account.values() for e in evs[len(evs) // 2 :]]
    await produce(s, first)
    folded_first = await read_topic(s, s.topics.events)
    await produce(s, second)
    already = {(r.partition, r.offset) for r in folded_first}
    later = [r for r in await read_topic(s, s.topics.events) if (r.partition, r.offset) not in already]
    events_tps = [TopicPartition(s.topics.events, p) for p in range(s.events_partitions)]
    assert await processor.assign(events_tps) == {}
    for tp in events_tps:
        processor.start_at(tp, 0)

    assert not await processor.fold(folded_first)
    assert await processor.checkpoint(wait=False)  # taken and encoded; its transaction not started yet
    rig.proxy.cut()
    assert not await processor.fold(later)  # every account is resident: the fold reads nothing
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a reset connection
        await processor.settle()
    rig.proxy.restore()
    assert await processor.checkpoint(wait=False)

    assert not processor.writing, "a checkpoint after a failed one waits for its transaction"
    assert await stored_states(rig.sandbox.engine) == recompute(first + second, config.rules)
    assert await seen_event_count(rig.sandbox.engine) == len(first) + len(second)
    ends = {tp.partition: off for tp, off in processor.positions.items()}
    assert await stored_offsets(rig.sandbox.engine, scorer_group(s), s.topics.events) == ends
    assert sum(ends.values()) == len(first) + len(second)


async def test_once_caught_up_what_is_pending_is_written_within_a_quarter_of_the_interval(rig: Rig) -> None:
    """An empty poll means nothing more is coming to share a checkpoint with: the loop writes what it folded
    within a quarter of CHURNWATCH_CHECKPOINT_INTERVAL_SECONDS, not at the interval's end (here 20 s, so the
    deadline below, 12 s after the events, fails without it). Events of January: no live signal hurries it."""
    s = rig.sandbox.settings
    processor = ScoringProcessor(
        topics=s.topics, producer=rig.producer, sessions=rig.sessions, config=ScoringConfig(),
        group_id=scorer_group(s), sweep_interval_s=3600, prune_interval_s=3600,
    )  # fmt: skip
    loop = ScorerLoop(
        bootstrap_servers=s.kafka_bootstrap_servers, topics=rig.topics(), processor=processor,
        dead_letter=rig.dead_letter, checkpoint_interval_s=20, consumer_options=FAST_GROUP,
    )  # fmt: skip
    january = datetime(2026, 1, 31, 12, tzinfo=UTC)
    events = [e for a in ("acct-01", "acct-02", "acct-03") for e in account_events(a, days=10, end=january)]
    async with _running(loop):
        await await_until(lambda: _claimed_all(processor, s.events_partitions), within=30, what="partitions claimed")
        await produce(s, events)
        await await_until(lambda: caught_up(rig.sandbox.engine, s), within=12, what="the events checkpointed")
    assert await seen_event_count(rig.sandbox.engine) == len(events)


async def _claimed_all(processor: ScoringProcessor, events_partitions: int) -> bool:
    return len(processor.owned_partitions()) == events_partitions
