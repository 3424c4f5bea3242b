"""What both consumer loops (shared/consumer_loop.py, services/scorer/partition_loop.py) report and how they wait
to retry a step: their Prometheus metrics, the lag per owned partition, and a doubling backoff."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("churnwatch_consumer_records_total", "Records handled by a consumer loop", ["group", "outcome"])
BATCH_SECONDS = Histogram("churnwatch_consumer_batch_seconds", "Time to process and commit one batch", ["group"])
BATCH_FAILURES = Counter("churnwatch_consumer_batch_failures_total", "Batches that failed and were retried", ["group"])
ASSIGNED = Gauge("churnwatch_consumer_assigned_partitions", "Partitions assigned to this instance", ["group"])
LAG = Gauge(
    "churnwatch_consumer_lag",
    "Records behind the partition's end (its highwater) not yet processed, per partition this instance owns",
    ["group", "topic", "partition"],
)


class ConsumerLag:
    """One loop's ``churnwatch_consumer_lag``: the highwater of the last fetch response (no broker round trip)
    minus the next offset the loop will process, for each owned partition whose both are known; the series of a
    partition no longer owned (or not yet sought) is removed."""

    def __init__(self, group_id: str) -> None:
        self._group = group_id
        self._exported: set[TopicPartition] = set()

    def update(self, consumer: AIOKafkaConsumer, positions: Mapping[TopicPartition, int]) -> int:
        """Exports each owned partition's lag; returns their sum (records known to wait)."""
        now: set[TopicPartition] = set()
        behind = 0
        for tp in consumer.assignment():
            at, highwater = positions.get(tp), consumer.highwater(tp)
            if at is not None and highwater is not None:
                lag = max(0, highwater - at)
                LAG.labels(self._group, tp.topic, str(tp.partition)).set(lag)
                behind += lag
                now.add(tp)
        self.drop(self._exported - now)
        self._exported |= now
        return behind

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in set(partitions) & self._exported:
            with contextlib.suppress(KeyError):
                LAG.remove(self._group, tp.topic, str(tp.partition))
            self._exported.discard(tp)


@dataclass
class RetryAfter:
    """When to try again a step that failed (a claim, a seek): the wait doubles from ``base_s`` up to ``cap_s``."""

    base_s: float = 0.5
    cap_s: float = 5.0
    due_at: float = 0.0
    _wait_s: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.due_at

    def failed(self, now: float) -> None:
        self._wait_s = min(self._wait_s * 2, self.cap_s) if self._wait_s else self.base_s
        self.due_at = now + self._wait_s

    def succeeded(self) -> None:
        self._wait_s, self.due_at = 0.0, 0.0
