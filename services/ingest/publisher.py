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

from services.ingest.metrics import PRODUCE_SECONDS
from shared.accounts import AccountProfile
from shared.events import Event, encode_event
from shared.settings import Topics

_PARTITIONER = DefaultPartitioner()


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; nothing should be reported as accepted."""


class EventPublisher:
    def __init__(self, producer: AIOKafkaProducer, topics: Topics, timeout_seconds: float) -> None:
        self._producer = producer
        self._topics = topics
        self._timeout = timeout_seconds

    async def publish_events(self, events: Sequence[Event]) -> None:
        await self._send_all([(self._topics.events, e.account_id, encode_event(e)) for e in events])

    async def publish_accounts(self, profiles: Sequence[AccountProfile]) -> None:
        await self._send_all([(self._topics.accounts, p.account_id, p.model_dump_json().encode()) for p in profiles])

    async def _send_all(self, messages: list[tuple[str, str, bytes]]) -> None:
        if not messages:
            return
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(deadline):  # waits for metadata and buffer space count too
                futures = await self._send_batches(messages)
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

    async def _send_batches(self, messages: list[tuple[str, str, bytes]]) -> list[asyncio.Future[Any]]:
        """Appends to one record batch per partition, partitioned exactly as the default partitioner would
        (murmur2 of the account id): the same placement as send(), without a future per message."""
        futures: list[asyncio.Future[Any]] = []
        open_batches: dict[tuple[str, int], Any] = {}
        partition_of: dict[tuple[str, str], int] = {}
        for topic, key, value in messages:
            if (topic, key) not in partition_of:
                partitions = sorted(await self._producer.partitions_for(topic))
                partition_of[topic, key] = _PARTITIONER(key.encode(), partitions, partitions)
            target = (topic, partition_of[topic, key])
            builder = open_batches.get(target) or self._producer.create_batch()
            if builder.append(timestamp=None, key=key.encode(), value=value) is None:  # full: ship it, start anew
                futures.append(await self._producer.send_batch(builder, topic, partition=target[1]))
                builder = self._producer.create_batch()
                if builder.append(timestamp=None, key=key.encode(), value=value) is None:
                    raise KafkaUnavailable(f"a {len(value)}-byte message does not fit in a producer batch")
            open_batches[target] = builder
        for (topic, partition), builder in open_batches.items():
            futures.append(await self._producer.send_batch(builder, topic, partition=partition))
        return futures
