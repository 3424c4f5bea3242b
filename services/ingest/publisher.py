"""Publishing to Kafka for ingest: a request succeeds only when every one of its writes is acknowledged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Histogram

from shared.accounts import AccountProfile
from shared.events import Event, encode_event
from shared.settings import Topics

PRODUCE_SECONDS = Histogram("churnwatch_ingest_produce_seconds", "Time for Kafka to acknowledge a request's writes")


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; nothing should be reported as accepted."""


class EventPublisher:
    def __init__(self, producer: AIOKafkaProducer, topics: Topics, timeout_seconds: float) -> None:
        self._producer = producer
        self._topics = topics
        self._timeout = timeout_seconds

    async def publish_events(self, events: Sequence[Event]) -> None:
        await self._send_all([(self._topics.events, e.account_id, encode_event(e)) for e in events])

    async def publish_account(self, profile: AccountProfile) -> None:
        await self._send_all([(self._topics.accounts, profile.account_id, profile.model_dump_json().encode())])

    async def _send_all(self, messages: list[tuple[str, str, bytes]]) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                futures = [
                    await self._producer.send(topic, value=value, key=key.encode()) for topic, key, value in messages
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            PRODUCE_SECONDS.observe(time.perf_counter() - started)
