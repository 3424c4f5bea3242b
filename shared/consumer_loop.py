"""The one consumer loop used by scorer and alerter.

poll a batch -> process it inside one PostgreSQL transaction -> store the next offsets in the same
transaction -> commit -> run the processor's after-commit step -> commit offsets to Kafka (for lag only).

Fencing: when partitions move between instances, a slow instance may still hold a batch for a partition it
lost. Each batch therefore *claims* its partitions first, in its own transaction: the stored offset row is
locked and moved forward only if it is not already past the batch's first offset. If another instance got
there first, the batch is rolled back whole and the loop seeks to the stored offsets. On revocation the loop
waits for the batch in flight to commit (the flush) before it lets the partitions go.

PostgreSQL is the source of truth for positions: on assignment the loop seeks to the offsets stored there,
so a crash at any moment replays exactly the batches whose effects were not committed. If a batch fails
(say PostgreSQL is down) nothing of it was committed, and the loop retries the same records with backoff.
Newly assigned partitions stay paused until they are sought: if PostgreSQL cannot be read in the rebalance
callback, the loop (not the callback) tries again with backoff, and nothing of theirs is processed meanwhile.
A message the processor cannot use is sent to the dead-letter topic with its reason; the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.consumer_health import ASSIGNED, BATCH_FAILURES, BATCH_SECONDS, RECORDS, ConsumerLag, RetryAfter
from shared.kafka import DeadLetterPublisher
from shared.offsets import Fenced, claim_offsets, load_offsets
from shared.state_log import StateLog

log = logging.getLogger(__name__)


class _Stale(Exception):
    """The partitions were sought to their stored offsets (a rebalance) after the batch was polled."""


@dataclass(frozen=True)
class Rejected:
    """A record the processor could not use, and why (goes to the dead-letter topic)."""

    record: ConsumerRecord[bytes, bytes]
    reason: str


class BatchProcessor(Protocol):
    async def process(self, session: AsyncSession, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        """Write the batch's effects through ``session`` (not committed yet); return unusable records."""

    async def after_commit(self) -> None:
        """Runs once the batch's transaction committed (e.g. publish what the batch queued)."""

    async def on_idle(self) -> None:
        """Runs when a poll brought nothing (e.g. advance time-driven work)."""

    def on_partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop in-memory caches for partitions this instance no longer owns."""


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Flush: let the batch in flight commit before the partitions go to another instance.
        async with self._loop.batch_lock:
            self._loop.release(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # After the batch in flight (if any) committed, so the stored offsets read here include it.
        async with self._loop.batch_lock:
            await self._loop.take(assigned)


class ConsumerLoop:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        sessions: async_sessionmaker[AsyncSession],
        processor: BatchProcessor,
        dead_letter: DeadLetterPublisher,
        max_batch: int = 1000,
        poll_timeout_ms: int = 500,
        retry_backoff_s: float = 1.0,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self.group_id = group_id
        self.processor = processor
        self._topics = list(topics)
        self._sessions = sessions
        self._dead_letter = dead_letter
        self._max_batch = max_batch
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_backoff_s = retry_backoff_s
        self._consumer_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            **(consumer_options or {}),
        }
        self._consumer: AIOKafkaConsumer | None = None
        self.running = False
        self.last_error: str | None = None
        self.batch_lock = asyncio.Lock()
        self.fenced_batches = 0
        self.committed_batches = 0
        self.stale_batches = 0
        self._seeks = 0  # bumped by every seek: records polled before one may be stale
        self._kafka_commit: asyncio.Task[None] | None = None
        self._kafka_pending: dict[TopicPartition, int] = {}
        self._unsought: set[TopicPartition] = set()  # assigned, paused until sought to their stored offsets
        self._seek_retry = RetryAfter(base_s=retry_backoff_s / 2)
        self._seek_trouble = StateLog(log, f"{group_id}: seeking assigned partitions")
        self._positions: dict[TopicPartition, int] = {}  # the next offset to process, per sought partition
        self._lag = ConsumerLag(group_id)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the consumer loop is not running")
        return self._consumer

    def assigned_partitions(self, topic: str) -> set[int]:
        """The partitions of ``topic`` this instance owns now (empty before the first assignment)."""
        if self._consumer is None:
            return set()
        return {tp.partition for tp in self._consumer.assignment() if tp.topic == topic}

    def release(self, revoked: Sequence[TopicPartition]) -> None:
        self._unsought.difference_update(revoked)
        for tp in revoked:
            self._positions.pop(tp, None)
        self._lag.drop(revoked)
        self.processor.on_partitions_revoked(revoked)

    async def take(self, partitions: Sequence[TopicPartition]) -> None:
        """Pause ``partitions`` until they are sought to their stored offsets; seek now if PostgreSQL answers,
        else the loop tries again before its next polls (a rebalance callback must not fail)."""
        self._seeks += 1  # whatever was polled before belongs to an earlier assignment
        self._unsought.update(partitions)
        self.consumer.pause(*partitions)
        await self._seek_unsought()

    async def _seek_unsought(self) -> None:
        self._unsought &= self.consumer.assignment()
        partitions = sorted(self._unsought, key=lambda t: (t.topic, t.partition))
        if not partitions:
            return
        try:
            await self.seek_to_stored(partitions)
        except Exception as exc:  # PostgreSQL (or the broker) unreachable: stay paused, try again from the loop
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._seek_retry.failed(time.monotonic())
            self._seek_trouble.failing(f"{len(partitions)} paused: {self.last_error}")
            return
        self._seek_retry.succeeded()
        self._seek_trouble.healthy()
        self._unsought.difference_update(partitions)
        self.consumer.resume(*partitions)

    async def seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        async with self._sessions() as session:
            stored = await load_offsets(session, self.group_id, partitions)
        missing = [tp for tp in partitions if tp not in stored]
        if missing:
            # explicit offsets rather than seek_to_beginning: its reset is applied later, asynchronously, and
            # could rewind a partition whose first records were already polled (and then committed)
            stored |= await self.consumer.beginning_offsets(missing)
        for tp in partitions:
            self.consumer.seek(tp, stored[tp])
            self._positions[tp] = stored[tp]
        self._seeks += 1
        ASSIGNED.labels(self.group_id).set(len(self.consumer.assignment()))
        log.info("%s assigned %s", self.group_id, sorted((tp.topic, tp.partition) for tp in partitions))

    async def run(self, stop: asyncio.Event) -> None:
        # aiokafka binds a consumer to the running event loop, so it is made here rather than in __init__
        self._consumer = AIOKafkaConsumer(**self._consumer_options)
        self._consumer.subscribe(self._topics, listener=_SeekToStoredOffsets(self))
        await self._consumer.start()
        self.running = True
        try:
            while not stop.is_set():
                if self._unsought and self._seek_retry.due(time.monotonic()):
                    async with self.batch_lock:
                        await self._seek_unsought()
                seeks = self._seeks
                polled = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._max_batch)
                polled = {tp: recs for tp, recs in polled.items() if tp not in self._unsought}
                records = [r for part in polled.values() for r in part]
                if records:
                    await self._handle_with_retry(_Batch(records, _offset_spans(polled), polled_at_seek=seeks), stop)
                else:
                    await self.processor.on_idle()
                self._lag.update(self._consumer, self._positions)
        finally:
            self.running = False
            await self._await_kafka_commit()
            await self._consumer.stop()

    async def _handle_with_retry(self, batch: _Batch, stop: asyncio.Event) -> None:
        records = batch.records
        backoff = self._retry_backoff_s
        while True:
            try:
                await self._handle(batch)
                self.last_error = None
                return
            except (_Stale, Fenced) as exc:
                # Nothing of the batch was written; its records not yet committed are read again from the
                # stored offsets (a rebalance's seek already went there, and seeking again is harmless).
                if isinstance(exc, Fenced):
                    self.fenced_batches += 1
                    log.warning("%s: batch dropped, %s; seeking to the stored offsets", self.group_id, exc)
                else:
                    self.stale_batches += 1
                RECORDS.labels(self.group_id, "fenced" if isinstance(exc, Fenced) else "stale").inc(len(records))
                async with self.batch_lock:
                    await self.take([tp for tp in batch.spans if tp in self.consumer.assignment()])
                return
            except Exception as exc:  # PostgreSQL or Kafka trouble: nothing committed, so replay the batch
                BATCH_FAILURES.labels(self.group_id).inc()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("%s: batch failed, retrying in %.1fs", self.group_id, backoff)
                if stop.is_set():
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _handle(self, batch: _Batch) -> None:
        started = time.perf_counter()
        next_offsets = batch.following()
        async with self.batch_lock:
            if self._seeks != batch.polled_at_seek:
                raise _Stale()
            rejected = await self._commit_batch(batch)
            self._positions.update((tp, off) for tp, off in next_offsets.items() if tp in self._positions)
        self.committed_batches += 1
        await self.processor.after_commit()
        RECORDS.labels(self.group_id, "processed").inc(len(batch.records) - len(rejected))
        RECORDS.labels(self.group_id, "dead_lettered").inc(len(rejected))
        BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)
        await self._commit_to_kafka(next_offsets)

    async def _commit_to_kafka(self, offsets: dict[TopicPartition, int]) -> None:
        """Only lag monitoring reads Kafka's committed offsets (PostgreSQL has the truth), so the batch does not
        wait for the broker: one commit is in flight at a time, and it carries the newest offsets when done."""
        for tp, off in offsets.items():
            self._kafka_pending[tp] = max(off, self._kafka_pending.get(tp, 0))
        if self._kafka_commit is None or self._kafka_commit.done():
            self._kafka_commit = asyncio.create_task(self._commit_pending())

    async def _commit_pending(self) -> None:
        while self._kafka_pending:
            offsets, self._kafka_pending = self._kafka_pending, {}
            try:
                await self.consumer.commit(offsets)
            except Exception as exc:
                log.info("%s: Kafka offset commit skipped: %s", self.group_id, exc)

    async def _await_kafka_commit(self) -> None:
        if self._kafka_commit is not None:  # its own failures are logged (or it was cancelled with the loop)
            await asyncio.gather(self._kafka_commit, return_exceptions=True)

    async def _commit_batch(self, batch: _Batch) -> list[Rejected]:
        async with self._sessions() as session, session.begin():
            await claim_offsets(session, self.group_id, batch.first(), batch.following())
            rejected = await self.processor.process(session, batch.records)
            for bad in rejected:
                r = bad.record
                await self._dead_letter.publish(
                    source_topic=r.topic,
                    partition=r.partition,
                    offset=r.offset,
                    key=r.key,
                    value=r.value,
                    reason=bad.reason,
                )
        return rejected


@dataclass(frozen=True)
class _Batch:
    records: list[ConsumerRecord[bytes, bytes]]
    spans: dict[TopicPartition, tuple[int, int]]  # each partition's first and last offset in the batch
    polled_at_seek: int

    def first(self) -> dict[TopicPartition, int]:
        return {tp: first for tp, (first, _) in self.spans.items()}

    def following(self) -> dict[TopicPartition, int]:
        return {tp: last + 1 for tp, (_, last) in self.spans.items()}


def _offset_spans(
    polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
) -> dict[TopicPartition, tuple[int, int]]:
    """A poll returns each partition's records in offset order, so its ends are its first and last record."""
    return {tp: (recs[0].offset, recs[-1].offset) for tp, recs in polled.items() if recs}
