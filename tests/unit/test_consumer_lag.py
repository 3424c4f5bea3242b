"""The consumer-lag gauge's arithmetic and series lifecycle, and the retry timer of claims and seeks (pure)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from shared.consumer_health import ConsumerLag, RetryAfter

A0, A1, B0 = TopicPartition("t.events", 0), TopicPartition("t.events", 1), TopicPartition("t.accounts", 0)


class Assignment:
    """What ConsumerLag reads of a consumer: its assignment and each partition's last fetched highwater."""

    def __init__(self, highwater: dict[TopicPartition, int | None]) -> None:
        self.highwaters = highwater

    def assignment(self) -> set[TopicPartition]:
        return set(self.highwaters)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters[tp]


def _lag(group: str, tp: TopicPartition) -> float | None:
    labels = {"group": group, "topic": tp.topic, "partition": str(tp.partition)}
    return REGISTRY.get_sample_value("churnwatch_consumer_lag", labels)


@pytest.mark.parametrize(
    ("highwater", "position", "lag"),
    [(100, 40, 60), (100, 100, 0), (100, 101, 0), (None, 40, None), (100, None, None)],
)
def test_lag_is_highwater_minus_the_next_offset_to_process(
    highwater: int | None, position: int | None, lag: float | None
) -> None:
    group = f"g-{highwater}-{position}"
    gauge = ConsumerLag(group)
    gauge.update(cast(Any, Assignment({A0: highwater})), {} if position is None else {A0: position})
    assert _lag(group, A0) == lag


def test_series_of_partitions_no_longer_owned_or_known_are_removed() -> None:
    gauge = ConsumerLag("g-lifecycle")
    consumer = Assignment({A0: 10, A1: 20, B0: 5})
    gauge.update(cast(Any, consumer), {A0: 10, A1: 15, B0: 5})
    assert [_lag("g-lifecycle", tp) for tp in (A0, A1, B0)] == [0, 5, 0]
    gauge.drop([A1])  # revoked
    assert _lag("g-lifecycle", A1) is None
    consumer.highwaters = {A0: 12}  # B0 went to another instance
    gauge.update(cast(Any, consumer), {A0: 10, B0: 5})
    assert [_lag("g-lifecycle", tp) for tp in (A0, A1, B0)] == [2, None, None]
    gauge.update(cast(Any, consumer), {})  # assigned again, not sought yet: no position, no series
    assert _lag("g-lifecycle", A0) is None


def test_retry_waits_double_up_to_the_cap_and_reset_on_success() -> None:
    retry = RetryAfter(base_s=0.5, cap_s=3.0)
    assert retry.due(0.0)
    due_at = []
    for now in (10.0, 20.0, 30.0, 40.0, 50.0):
        retry.failed(now)
        due_at.append(retry.due_at - now)
        assert not retry.due(now) and retry.due(now + due_at[-1])
    assert due_at == [0.5, 1.0, 2.0, 3.0, 3.0]
    retry.succeeded()
    assert retry.due(0.0)
    retry.failed(100.0)
    assert retry.due_at == 100.5
