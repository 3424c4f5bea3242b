"""Kafka plumbing shared by the services: an idempotent producer, topic creation, the dead-letter topic."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.settings import CommonSettings

log = logging.getLogger(__name__)


def build_producer(settings: CommonSettings, *, client_id: str) -> AIOKafkaProducer:
    """acks=all and idempotence: a write is acknowledged only once the broker has it, exactly once per retry."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=10_000,
        compression_type=None,
    )


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


def topic_specs(settings: CommonSettings) -> list[TopicSpec]:
    t = settings.topics
    n = settings.events_partitions
    return [
        TopicSpec(t.events, n),
        # the same partition count as events, so an account's profile and events share a partition number
        TopicSpec(t.accounts, n, compacted=True),
        TopicSpec(t.signals, n),
        TopicSpec(t.dead_letter, 1),
    ]


async def create_topics(settings: CommonSettings, specs: Sequence[TopicSpec] | None = None) -> list[str]:
    """Create the topics that are missing; returns the names created. Safe to run again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in (specs or topic_specs(settings)) if s.name not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(
                name=s.name,
                num_partitions=s.partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if s.compacted else {},
            )
            for s in wanted
        ]
        with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
            await admin.create_topics(new)
        return [s.name for s in wanted]
    finally:
        await admin.close()


class DeadLetterPublisher:
    """Sends a message that cannot be processed to the dead-letter topic, with why and where it came from."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(
        self, *, source_topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str
    ) -> None:
        headers = [
            ("churnwatch.reason", reason[:2000].encode()),
            (
                "churnwatch.source",
                json.dumps({"topic": source_topic, "partition": partition, "offset": offset}).encode(),
            ),
        ]
        await self._producer.send_and_wait(self._topic, value=value, key=key, headers=headers)
        log.warning("dead-lettered %s[%d]@%d: %s", source_topic, partition, offset, reason[:200])


async def kafka_reachable(producer: AIOKafkaProducer) -> bool:
    """True when the broker answered a metadata request just now."""
    return bool(await producer.client.force_metadata_update())
