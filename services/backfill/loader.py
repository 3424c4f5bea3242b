"""The backfill run: probe the inputs, produce the profiles, then the events the reader process hands over in
time order (reader.py), and say how far it got.

Events go to ``<prefix>.events`` keyed by account id on the partition ingest would choose (aiokafka's default
partitioner over the topic's partitions), through an idempotent ``acks=all`` producer, in record batches
built per partition (``EventSender``), awaited only when more than ``backfill_max_in_flight`` records are
unacknowledged. Profiles go to
``<prefix>.accounts`` through ingest's own publisher and are remembered in ``ingest_accounts`` as
``PUT /v1/accounts/{id}`` does. A stop request (Ctrl-C) stops reading; what is in flight is still flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy.exc import SQLAlchemyError

from services.backfill.progress import Outcome, ProgressView
from services.backfill.reader import ReaderProcess, ReadJob
from services.backfill.reading import (
    InputSpec,
    RejectLog,
    open_input,
    probe,
    profile_records,
)
from services.backfill.settings import BackfillSettings
from services.backfill.sources import EventParser, EventRecord, event_rules
from services.ingest.account_store import remember_profiles
from services.ingest.publisher import EventPublisher
from shared.accounts import AccountProfile
from shared.db import build_engine

log = logging.getLogger(__name__)
_PROFILE_CHUNK = 1000


class MissingTopic(Exception):
    """A topic the run writes to does not exist (sending would auto-create it with the wrong partitions)."""


async def require_topics(producer: AIOKafkaProducer, topics: list[str]) -> None:
    existing = (await producer.client.fetch_all_metadata()).topics()
    missing = [t for t in topics if t not in existing]
    if missing:
        raise MissingTopic(
            f"topic(s) {', '.join(missing)} do not exist: create them with --sandbox NAME --create"
            " (or `churnwatch topics create`); nothing was sent"
        )


class StopRequest:
    """Set from a signal handler; the reading loops look at it."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested


@dataclass(frozen=True)
class BackfillPlan:
    events: list[InputSpec]
    profiles: list[InputSpec]
    rejects: Path
    max_age: timedelta | None = None


def build_producer(settings: BackfillSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="churnwatch-backfill",
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.backfill_linger_ms,
        max_batch_size=settings.backfill_batch_bytes,
        request_timeout_ms=settings.backfill_request_timeout_ms,
    )


class EventSender:
    """Records to the events topic, keyed and partitioned as ingest does, in record batches built here.

    A ``send()`` per record costs aiokafka a future, a lookup and a partition call each; instead each partition
    has one batch being filled (``create_batch``), shipped whole with ``send_batch`` once full, as ingest's
    publisher does for a request (services/ingest/publisher.py). Order within a partition is kept: batches of a
    partition are shipped in the order they were filled, aiokafka queues them in that order, and its sender has
    at most one batch of a partition in flight (the partition is muted until it is answered), so a retry never
    overtakes; the idempotent producer's sequence numbers make a retried batch land once. ``send_batch`` waits
    while the partition's previous batch is still queued: that, and ``max_in_flight`` records unacknowledged,
    bound what is held. This is the only sender of its partitions, one batch at a time, so aiokafka's shrinking
    wait in ``send_batch`` (why ingest locks each partition) never meets a second waiter.
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: list[int], max_in_flight: int) -> None:
        self._producer, self._topic, self._partitions = producer, topic, sorted(partitions)
        self._partitioner = DefaultPartitioner()
        self.partition_of: dict[bytes, int] = {}  # one entry per account: murmur2 per record costs too much
        self._filling: dict[int, Any] = {}  # partition -> its BatchBuilder being filled
        self._shipped: deque[tuple[asyncio.Future[Any], int]] = deque()  # (delivery, records), oldest first
        self._unacknowledged = 0
        self._max_in_flight = max_in_flight
        self.handed = 0

    def partition(self, key: bytes) -> int:
        found = self.partition_of.get(key)
        if found is None:
            found = self.partition_of[key] = self._partitioner(key, self._partitions, self._partitions)
        return found

    async def send(self, records: list[EventRecord], stop: StopRequest) -> int | None:
        """Records into their partitions' batches, in order, until a stop is requested; the occurred_at of the
        last one handed over (None if none was)."""
        partition_of, filling, last_at, handed = self.partition_of, self._filling, None, 0
        for at, _, _, key, value in records:
            if stop.requested:
                break
            partition = partition_of.get(key)
            if partition is None:
                partition = self.partition(key)
            batch = filling.get(partition)
            if batch is None or batch.append(timestamp=None, key=key, value=value) is None:
                await self._start_batch(partition, batch, key, value)
            last_at, handed = at, handed + 1
        self.handed += handed
        return last_at

    async def _start_batch(self, partition: int, full: Any, key: bytes, value: bytes) -> None:
        if full is not None:
            await self._ship(partition, full)
        batch = self._filling[partition] = self._producer.create_batch()
        batch.append(timestamp=None, key=key, value=value)  # the first record always fits a new batch

    async def _ship(self, partition: int, batch: Any) -> None:
        batch.close()  # full, or the last one: send it now rather than after linger_ms
        delivery = await self._producer.send_batch(batch, self._topic, partition=partition)
        self._shipped.append((delivery, batch.record_count()))
        self._unacknowledged += batch.record_count()
        if self._unacknowledged > self._max_in_flight:
            await self._settle(self._max_in_flight // 2)

    async def _settle(self, keep: int) -> None:
        """Waits for the oldest deliveries; a delivery that failed for good raises here."""
        while self._shipped and self._unacknowledged > keep:
            delivery, records = self._shipped.popleft()
            await delivery
            self._unacknowledged -= records

    async def flush(self) -> None:
        """Ships every batch being filled and waits until all are acknowledged."""
        filling, self._filling = self._filling, {}
        for partition, batch in filling.items():
            await self._ship(partition, batch)
        await self._producer.flush()
        await self._settle(-1)


class BackfillRun:
    """One run of a plan: its parser, rejects, progress, stop request and outcome."""

    def __init__(self, plan: BackfillPlan, settings: BackfillSettings, view: ProgressView, stop: StopRequest) -> None:
        self.plan, self.settings, self.view, self.stop = plan, settings, view, stop
        self.rules = event_rules(
            max_event_bytes=settings.max_event_bytes,
            max_future=timedelta(seconds=settings.max_event_future_seconds),
            max_age=plan.max_age,
        )
        self.parser = EventParser(self.rules, lambda: datetime.now(UTC))
        self.rejects = RejectLog(plan.rejects)
        self.outcome = Outcome()
        self._reader_rejects = 0

    @property
    def rejected(self) -> int:
        return self.rejects.count + self._reader_rejects

    def probe_inputs(self) -> None:
        """NotTheSchema for the first input that is not what it claims, before anything is sent."""
        for spec in [*self.plan.profiles, *self.plan.events]:
            probe(spec, self.parser, self.settings.backfill_probe_lines)

    async def send_events(self, sender: EventSender) -> None:
        """Events from the reader process, in time order, to the sender; until the end or a stop."""
        with tempfile.TemporaryDirectory(prefix="churnwatch-backfill-") as spill:
            job = ReadJob(
                self.plan.events,
                self.rules,
                self.plan.rejects,
                Path(spill),
                self.settings.backfill_run_events,
                self.settings.backfill_merge_fan_in,
                self.settings.backfill_read_workers,
            )
            self.view.scanning(sum(spec.path.stat().st_size for spec in self.plan.events))
            reader = ReaderProcess(job)
            finished = False
            try:
                while (message := await reader.next_message(self.stop)) is not None:
                    if finished := message[0] == "end":
                        break
                    await self._take(message, sender)
            finally:
                reader.close(finished=finished)
        self.outcome.interrupted = self.stop.requested

    async def _take(self, message: tuple[Any, ...], sender: EventSender) -> None:
        kind = message[0]
        if kind == "scanned":
            self.view.scanned(message[1])
        elif kind == "scan":
            self.outcome.sorted_inputs = message[1]
            self.view.sending(message[2])
        elif kind == "events":
            _, chunk, read, self._reader_rejects, self.outcome.last_lines = message
            await self._pump(chunk, sender)
            self.view.read_to(read)

    async def _pump(self, chunk: list[EventRecord], sender: EventSender) -> None:
        """A chunk of records to the sender, unless a stop is requested."""
        last_at = await sender.send(chunk, self.stop)
        if last_at is not None:
            self.outcome.last_event_at_us = last_at
        self.view.sent(sender.handed, self.rejected)

    async def send_profiles(self, producer: AIOKafkaProducer) -> int:
        """Profiles to the accounts topic as ingest publishes them, then remembered as ingest remembers them."""
        if not self.plan.profiles:
            return 0
        publisher = EventPublisher(producer, self.settings.topics, self.settings.backfill_request_timeout_ms / 1000)
        sent: list[AccountProfile] = []
        for spec in self.plan.profiles:
            with open_input(spec, self.parser) as opened:
                profiles = profile_records(opened, self.rejects)
                while chunk := list(itertools.islice(profiles, _PROFILE_CHUNK)):
                    await publisher.publish_accounts(chunk)
                    sent += chunk
        self.rejects.close()  # the reader process appends the events' rejects
        await _remember(self.settings, sent)
        return len(sent)


async def backfill(plan: BackfillPlan, settings: BackfillSettings, view: ProgressView, stop: StopRequest) -> Outcome:
    """Runs the whole backfill; raises NotTheSchema (nothing sent), MissingTopic, ReaderFailed or a Kafka error."""
    started = time.perf_counter()
    run = BackfillRun(plan, settings, view, stop)
    outcome = run.outcome
    try:
        run.probe_inputs()
        plan.rejects.unlink(missing_ok=True)  # the previous run's
        producer = build_producer(settings)
        await producer.start()
        try:
            wanted = [settings.topics.events] + ([settings.topics.accounts] if plan.profiles else [])
            await require_topics(producer, wanted)
            outcome.profiles_sent = await run.send_profiles(producer)
            partitions = await producer.partitions_for(settings.topics.events)
            sender = EventSender(producer, settings.topics.events, list(partitions), settings.backfill_max_in_flight)
            try:
                await run.send_events(sender)
            finally:
                with contextlib.suppress(Exception):  # the error that stopped us is the one to report
                    await sender.flush()
                outcome.events_sent, outcome.accounts = sender.handed, len(sender.partition_of)
        finally:
            await producer.stop()
    finally:
        run.rejects.close()
        view.close()
        outcome.rejects, outcome.elapsed = run.rejected, time.perf_counter() - started
    return outcome


async def _remember(settings: BackfillSettings, profiles: list[AccountProfile]) -> None:
    engine = build_engine(settings)
    try:
        for i in range(0, len(profiles), _PROFILE_CHUNK):
            await remember_profiles(engine, profiles[i : i + _PROFILE_CHUNK])
    except (SQLAlchemyError, OSError) as exc:
        log.warning("profiles are on the accounts topic but ingest_accounts was not updated: %s", exc)
    finally:
        await engine.dispose()
