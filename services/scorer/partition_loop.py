"""The scorer's consumer loop: poll -> fold in memory -> checkpoint every interval or N events -> publish.

Unlike the shared per-batch loop (shared/consumer_loop.py, the alerter's), the scorer keeps its partitions'
accounts in memory and commits state and offsets together only at checkpoints (services/scorer/processor.py).
While records keep coming a checkpoint's transaction runs as the next batches fold (settled before the next
checkpoint, or as soon as the loop sees it done); more than a poll behind (a replay, a backlog) the interval is
CHURNWATCH_CHECKPOINT_CATCH_UP_INTERVAL_SECONDS instead, since each checkpoint writes every changed account, and
once a poll finds nothing it is a quarter of CHURNWATCH_CHECKPOINT_INTERVAL_SECONDS.

Rebalances: on revocation the loop checkpoints (under the loop's lock, so after the batch in flight) and drops
the partitions' accounts; on assignment it pauses the partitions, claims them (bumping their epochs, which fences
every earlier owner), reads the stored offsets, seeks there and resumes them; accounts are read lazily on their
first event. If the claim fails (PostgreSQL down in the rebalance callback), the partitions stay paused and
unclaimed, nothing of theirs is folded, and the loop (not the callback) claims them again with backoff. A
checkpoint refused because another instance claimed a partition (this one was paused past its session, say)
discards that partition's memory and pauses it until the group assigns it again. Records polled across a
(re)assignment are dropped and their partitions sought back to where the fold is (so they come again). If
PostgreSQL fails, nothing of the checkpoint was written; memory still holds it and the loop retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from services.scorer.checkpoint_store import PartitionsLost
from services.scorer.processor import ScoringProcessor
from services.scorer.settings import ScorerSettings
from shared.consumer_health import ASSIGNED, BATCH_FAILURES, BATCH_SECONDS, RECORDS, ConsumerLag, RetryAfter
from shared.kafka import DeadLetterPublisher
from shared.state_log import StateLog

log = logging.getLogger(__name__)
_DEFAULTS = ScorerSettings.model_fields  # the loop's defaults are the settings' (one place to change them)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ScorerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._loop.lock:
            self._loop.release(revoked)
            try:
                await self._loop.processor.revoke(revoked)
            except Exception:  # the next owner reads again from the last checkpoint: only work is lost
                log.exception("%s: checkpoint on revocation failed", self._loop.group_id)
                self._loop.processor.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self._loop.lock:
            await self._loop.take(assigned)


class ScorerLoop:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Sequence[str],
        processor: ScoringProcessor,
        dead_letter: DeadLetterPublisher,
        max_batch: int = _DEFAULTS["max_batch"].default,
        checkpoint_interval_s: float = _DEFAULTS["checkpoint_interval_seconds"].default,
        catch_up_interval_s: float = _DEFAULTS["checkpoint_catch_up_interval_seconds"].default,
        checkpoint_events: int = _DEFAULTS["checkpoint_events"].default,
        checkpoint_accounts: int = _DEFAULTS["checkpoint_accounts"].default,
        poll_timeout_ms: int = 200,
        retry_backoff_s: float = 1.0,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self.processor = processor
        self.group_id = processor.group_id
        self._topics = list(topics)
        self._dead_letter = dead_letter
        self._max_batch = max_batch
        self._interval_s = checkpoint_interval_s
        self._catch_up_interval_s = catch_up_interval_s
        self._behind = 0  # records known to wait on the owned partitions, as of the last poll
        self._max_events = checkpoint_events
        self._max_accounts = checkpoint_accounts
        self._poll_timeout_ms = poll_timeout_ms
        self._retry_backoff_s = retry_backoff_s
        self._trouble = StateLog(log, f"{self.group_id}: scoring")
        self._consumer_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            **(consumer_options or {}),
        }
        self._consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()
        self.last_error: str | None = None
        self._seeks = 0  # bumped by every seek: records polled before one may be stale
        self._kafka_commit: asyncio.Task[None] | None = None
        self.unclaimed: set[TopicPartition] = set()  # assigned, paused until claimed and sought
        self._claim_retry = RetryAfter(base_s=retry_backoff_s / 2)
        self._claim_trouble = StateLog(log, f"{self.group_id}: claiming assigned partitions")
        self._lag = ConsumerLag(self.group_id)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the scorer loop is not running")
        return self._consumer

    def release(self, revoked: Sequence[TopicPartition]) -> None:
        self.unclaimed.difference_update(revoked)
        self._lag.drop(revoked)

    async def take(self, assigned: Sequence[TopicPartition]) -> None:
        """Pause newly assigned partitions until they are claimed; claim them now if PostgreSQL answers, else
        the loop tries again before its next polls (a failure inside a rebalance callback is only logged)."""
        self._seeks += 1  # whatever was polled before belongs to an earlier assignment
        self.unclaimed.update(assigned)
        self.consumer.pause(*assigned)
        await self._claim_unclaimed()

    async def _claim_unclaimed(self) -> None:
        self.unclaimed &= self.consumer.assignment()
        partitions = sorted(self.unclaimed, key=lambda t: (t.topic, t.partition))
        if not partitions:
            return
        try:
            await self._claim(partitions)
        except Exception as exc:  # a claim half done (epochs, no offsets) must not fold: forget it, claim again
            self.processor.forget(partitions)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._claim_retry.failed(time.monotonic())
            self._claim_trouble.failing(f"{len(partitions)} paused: {self.last_error}")
            return
        self._claim_retry.succeeded()
        self._claim_trouble.healthy()
        self.unclaimed.difference_update(partitions)

    async def _claim(self, assigned: Sequence[TopicPartition]) -> None:
        """Claim the partitions and seek each to its stored offset (or the beginning), then resume them."""
        stored = await self.processor.assign(assigned)
        missing = [tp for tp in assigned if tp not in stored]
        if missing:
            # explicit offsets rather than seek_to_beginning, whose reset is applied later, asynchronously
            for tp, off in (await self.consumer.beginning_offsets(missing)).items():
                stored[tp] = off
                self.processor.start_at(tp, off)
        self.consumer.resume(*assigned)
        for tp in assigned:
            self.consumer.seek(tp, stored[tp])
        self._seeks += 1
        ASSIGNED.labels(self.group_id).set(len(self.consumer.assignment()))
        log.info("%s assigned %s", self.group_id, sorted((tp.topic, tp.partition) for tp in assigned))

    async def run(self, stop: asyncio.Event) -> None:
        # aiokafka binds a consumer to the running event loop, so it is made here rather than in __init__
        self._consumer = AIOKafkaConsumer(**self._consumer_options)
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await self._consumer.start()
        try:
            while not stop.is_set():
                if self.unclaimed and self._claim_retry.due(time.monotonic()):
                    async with self.lock:
                        await self._claim_unclaimed()
                seeks = self._seeks
                polled = await self._consumer.getmany(timeout_ms=self._poll_timeout_ms, max_records=self._max_batch)
                async with self.lock:
                    await self._step(polled, fresh=seeks == self._seeks, stop=stop)
                    self._behind = self._lag.update(self._consumer, self.processor.positions)
        finally:
            async with self.lock:
                await self._final_checkpoint()
            if self._kafka_commit is not None:
                await asyncio.gather(self._kafka_commit, return_exceptions=True)
            await self._consumer.stop()

    async def _step(self, polled: dict[TopicPartition, list[Any]], *, fresh: bool, stop: asyncio.Event) -> None:
        started = time.perf_counter()
        await self._fold_and_checkpoint(polled, fresh=fresh, stop=stop)
        if polled:
            BATCH_SECONDS.labels(self.group_id).observe(time.perf_counter() - started)

    async def _fold_and_checkpoint(
        self, polled: dict[TopicPartition, list[Any]], *, fresh: bool, stop: asyncio.Event
    ) -> None:
        owned = {tp for tp in self.processor.epochs if tp not in self.unclaimed}  # never fold an unclaimed one
        records = [r for tp, recs in polled.items() if tp in owned for r in recs] if fresh else []
        if not fresh:  # polled across a (re)assignment: read them again from where the fold is
            RECORDS.labels(self.group_id, "stale").inc(sum(len(v) for v in polled.values()))
            for tp in polled:
                if tp in owned and tp in self.processor.positions:
                    self.consumer.seek(tp, self.processor.positions[tp])
        if records:
            rejected = await self._retrying(lambda: self.processor.fold(records), stop)
            for bad in rejected or []:
                r = bad.record
                await self._dead_letter.publish(
                    source_topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value,
                    reason=bad.reason,
                )  # fmt: skip
            RECORDS.labels(self.group_id, "processed").inc(len(records) - len(rejected or []))
            RECORDS.labels(self.group_id, "dead_lettered").inc(len(rejected or []))
        if self.processor.write_done():  # a checkpoint written in the background: its signals, its offsets
            await self._retrying(self._settle, stop)
        # more than a poll behind (a replay, a backlog), the read API lags by the backlog whatever the interval,
        # and each checkpoint writes every account changed since the last: fewer, larger ones then. Caught up (a
        # poll found nothing), nothing more is coming to share a checkpoint with: a quarter of the interval
        interval = self._interval_s / 4 if fresh and not records else self._interval_s
        if self._behind > self._max_batch:
            interval = self._catch_up_interval_s
        if self.processor.checkpoint_due(interval, self._max_events, self._max_accounts):
            await self._retrying(lambda: self._checkpoint(wait=not records), stop)
        if records:
            await self._retrying(self.processor.after_checkpoint, stop)
        elif fresh:
            await self._retrying(self.processor.on_idle, stop)

    async def _checkpoint(self, *, wait: bool = True) -> bool:
        """A checkpoint; with ``wait=False`` its transaction runs while the loop goes on (see ``_settle``)."""
        while True:
            try:
                written = await self.processor.checkpoint(wait=wait)
                if written:
                    self._commit_to_kafka()
                return written
            except PartitionsLost as exc:
                self._lost(exc)

    async def _settle(self) -> None:
        try:
            await self.processor.settle()
            self._commit_to_kafka()
        except PartitionsLost as exc:
            self._lost(exc)

    def _lost(self, exc: PartitionsLost) -> None:
        """A zombie's memory: drop it, and wait for the group to assign the partitions again."""
        log.warning("%s: %s; their memory is dropped", self.group_id, exc)
        self.processor.forget(exc.lost)
        self.consumer.pause(*[tp for tp in exc.lost if tp in self.consumer.assignment()])

    async def _retrying(self, step: Any, stop: asyncio.Event) -> Any:
        backoff = self._retry_backoff_s
        while True:
            try:
                result = await step()
                self.last_error = None
                self._trouble.healthy()
                return result
            except PartitionsLost as exc:
                self.processor.forget(exc.lost)
                self.consumer.pause(*[tp for tp in exc.lost if tp in self.consumer.assignment()])
                return None
            except Exception as exc:  # PostgreSQL or Kafka trouble: memory still holds it, so try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                BATCH_FAILURES.labels(self.group_id).inc()
                self._trouble.failing(self.last_error)  # one line when it starts, a reminder a minute, one when over
                if stop.is_set():
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _final_checkpoint(self) -> None:
        try:
            await self._checkpoint()
            await self.processor.publish_outbox()
        except Exception:  # the next start reads again from the last checkpoint
            log.exception("%s: final checkpoint failed", self.group_id)

    def _commit_to_kafka(self) -> None:
        """Only lag monitoring reads Kafka's committed offsets (PostgreSQL has the truth): one commit in flight."""
        if self._kafka_commit is None or self._kafka_commit.done():
            assigned = self.consumer.assignment()
            offsets = {tp: off for tp, off in self.processor.written_offsets().items() if tp in assigned}
            self._kafka_commit = asyncio.create_task(self._commit(offsets))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.info("%s: Kafka offset commit skipped: %s", self.group_id, exc)
