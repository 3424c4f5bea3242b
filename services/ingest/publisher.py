"""Publishing to Kafka for ingest: a request succeeds only when every one of its writes is acknowledged.

If any write is not acknowledged in time the whole request fails (503) and the client retries all of it;
writes of that request that did land are recognised downstream by their event id and counted once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from services.ingest.broker_health import BrokerHealth
from services.ingest.metrics import PRODUCE_SECONDS
from shared.accounts import AccountProfile
from shared.events import Event, encode_event
from shared.settings import Topics

_PARTITIONER = DefaultPartitioner()
_REMEMBERED_KEYS = 100_000  # partition of each recent key: murmur2 per message costs more than validating it


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; nothing should be reported as accepted."""


class EventPublisher:
    """``health``: when given, a request is refused at once while the broker is known down, and every send
    outcome is reported to it (ingest); the backfill has none and always waits."""

    def __init__(
        self, producer: AIOKafkaProducer, topics: Topics, timeout_seconds: float, health: BrokerHealth | None = None
    ) -> None:
        self._producer = producer
        self._topics = topics
        self._timeout = timeout_seconds
        self._health = health
        self._partition_of: dict[tuple[int, bytes], int] = {}
        self._partition_locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def publish_events(self, events: Sequence[Event], values: Sequence[bytes] | None = None) -> None:
        """``values``: the events as already encoded by the caller (else encoded here)."""
        encoded = values if values is not None else [encode_event(e) for e in events]
        await self._send_all(
            self._topics.events, [(e.account_id.encode(), v) for e, v in zip(events, encoded, strict=True)]
        )

    async def publish_accounts(self, profiles: Sequence[AccountProfile]) -> None:
        messages = [(p.account_id.encode(), p.model_dump_json().encode()) for p in profiles]
        await self._send_all(self._topics.accounts, messages)

    async def _send_all(self, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
        if not messages:
            return
        if self._health is not None and not self._health.up:
            raise KafkaUnavailable("the broker is known unreachable; not waiting for it")
        try:
            await self._send_and_wait(topic, messages)
        except KafkaUnavailable as exc:
            if self._health is not None:
                self._health.failed(str(exc)[:200])
            raise
        if self._health is not None:
            self._health.acknowledged()

    async def _send_and_wait(self, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):  # waits for metadata and buffer space count too
                futures = await self._send_batches(topic, messages)
            # wait, not gather: delivery futures belong to the producer and must not be cancelled by us
            _, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
            if pending:
                raise KafkaUnavailable(f"{len(pending)} of {len(futures)} batches not acknowledged in time")
            failed = next((f.exception() for f in futures if f.exception() is not None), None)
            if failed is not None:
                raise KafkaUnavailable(f"{type(failed).__name__}: {failed}")
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            PRODUCE_SECONDS.observe(time.perf_counter() - started)

    def _partition(self, partitions: list[int], key: bytes) -> int:
        """The default partitioner's choice (murmur2 of the account id), remembered per partition count."""
        remembered = (len(partitions), key)
        found = self._partition_of.get(remembered)
        if found is None:
            if len(self._partition_of) >= _REMEMBERED_KEYS:
                self._partition_of.clear()
            found = self._partition_of[remembered] = _PARTITIONER(key, partitions, partitions)
        return found

    def _fill_batches(self, partitions: list[int], messages: list[tuple[bytes, bytes]]) -> dict[int, list[Any]]:
        """Record batches per partition, each message placed exactly as send() would place it."""
        filled: dict[int, list[Any]] = {}
        for key, value in messages:
            partition = self._partition(partitions, key)
            builders = filled.setdefault(partition, [])
            if not builders or builders[-1].append(timestamp=None, key=key, value=value) is None:
                builders.append(self._producer.create_batch())  # the first message always fits a new batch
                builders[-1].append(timestamp=None, key=key, value=value)
        return filled

    async def _ship(self, topic: str, partition: int, builders: list[Any]) -> list[asyncio.Future[Any]]:
        # aiokafka's send_batch waits while the partition has a queued batch, taking the time it waited off its
        # timeout once per wake-up again and again; requests racing for one partition ran it down in well under a
        # second and answered 503 with Kafka healthy. One sender per partition at a time; our deadline still holds.
        async with self._partition_locks.setdefault((topic, partition), asyncio.Lock()):
            return [await self._producer.send_batch(b, topic, partition=partition) for b in builders]

    async def _send_batches(self, topic: str, messages: list[tuple[bytes, bytes]]) -> list[asyncio.Future[Any]]:
        """One record batch per partition (more when full), shipped to all partitions at once, without a future
        per message."""
        partitions = sorted(await self._producer.partitions_for(topic))
        filled = self._fill_batches(partitions, messages)
        shipped = await asyncio.gather(*(self._ship(topic, p, builders) for p, builders in filled.items()))
        return [future for futures in shipped for future in futures]
