"""A scorer that lost its partitions must not commit (real PostgreSQL, and real processes for the zombie).

Checkpoints are fenced by partition epochs: claiming a partition bumps its epoch, and a checkpoint writes only
while every partition it holds still carries the epoch its instance claimed. The processor-level test drives two
instances by hand; the process-level one pauses a real scorer (SIGSTOP) with a stream folded in memory and not
checkpointed, lets a second scorer take the group and go further, and wakes the first.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import text

from services.demo.processes import ServiceProcess
from services.scorer.checkpoint_store import PartitionsLost
from services.scorer.evaluate import ScoringConfig
from services.scorer.processor import ScoringProcessor
from services.scorer.windows import WindowRules
from shared.consumer_progress import caught_up, stored_offsets
from shared.db import session_factory
from shared.events import EVENT_ADAPTER, encode_event
from tests.integration.conftest import Sandbox
from tests.integration.test_scorer_recovery import assert_no_signal_twice
from tests.support.polling import await_until
from tests.support.scorer_stream import account_events, produce, read_topic, recompute, stored_states
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.integration

START = datetime(2026, 2, 2, 10, tzinfo=UTC)
KEY_FEATURES = frozenset({"dashboards", "reports", "automation"})


def _record(topic: str, offset: int, account: str, day: int) -> ConsumerRecord[bytes, bytes]:
    event = EVENT_ADAPTER.validate_python(
        {"kind": "usage", "action": "login", "event_id": f"{account}-{day}", "account_id": account}
        | {"user_id": "u", "occurred_at": (START + timedelta(days=day)).isoformat()}
    )
    value = encode_event(event)
    return ConsumerRecord(topic, 0, offset, 0, 0, account.encode(), value, None, 1, len(value), ())


async def _table(sandbox: Sandbox) -> tuple[dict[str, Any], dict[int, int]]:
    async with sandbox.engine.connect() as conn:
        rows = await conn.execute(text("SELECT account_id, closed_on FROM account_health"))
        health = {r.account_id: r.closed_on for r in rows}
    s = sandbox.settings
    return health, await stored_offsets(sandbox.engine, f"{s.topic_prefix}.scorer", s.topics.events)


async def test_an_instance_that_lost_its_partition_writes_nothing(sandbox: Sandbox) -> None:
    sessions = session_factory(sandbox.engine)
    topics = sandbox.settings.topics
    tp = TopicPartition(topics.events, 0)
    producer: Any = None  # nothing is published here

    def instance(name: str) -> ScoringProcessor:
        return ScoringProcessor(
            topics=topics, producer=producer, sessions=sessions, config=ScoringConfig(), owner=name,
            group_id=f"{sandbox.settings.topic_prefix}.scorer",
        )  # fmt: skip

    zombie, owner = instance("zombie"), instance("owner")
    await zombie.assign([tp])
    await zombie.fold([_record(topics.events, d, "a", d) for d in range(5)])
    assert await zombie.checkpoint()
    before = await _table(sandbox)
    await zombie.fold([_record(topics.events, 5 + d, "a", 5 + d) for d in range(5)])  # not checkpointed

    await owner.assign([tp])  # the group moved the partition while the zombie was paused
    with pytest.raises(PartitionsLost) as lost:
        await zombie.checkpoint()
    assert lost.value.lost == [tp]
    assert await _table(sandbox) == before, "a fenced checkpoint must write nothing"
    zombie.forget(lost.value.lost)
    assert zombie.resident.accounts == {} and not zombie.resident.dirty

    await owner.fold([_record(topics.events, 5 + d, "a", 5 + d) for d in range(8)])
    assert await owner.checkpoint()
    health, offsets = await _table(sandbox)
    assert offsets == {0: 13} and health["a"] == (START + timedelta(days=11)).date()


async def _metric(scorer: ServiceProcess, name: str) -> float:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{scorer.url}/metrics", timeout=5)).text
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)} ([0-9.e+]+)$", body, re.M))


async def _at_least(scorer: ServiceProcess, name: str, n: float) -> bool:
    return await _metric(scorer, name) >= n


@pytest.fixture
def two_scorers(sandbox: Sandbox) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    base = {**sandbox.env, "CHURNWATCH_LOG_LEVEL": "WARNING", "CHURNWATCH_MAX_BATCH": "200"}
    # the zombie folds everything in memory and checkpoints only when it has to (revocation)
    never = {"CHURNWATCH_CHECKPOINT_INTERVAL_SECONDS": "3600", "CHURNWATCH_CHECKPOINT_EVENTS": "100000000"}
    zombie = ServiceProcess("scorer", {**base, **never, "CHURNWATCH_SWEEP_INTERVAL_SECONDS": "3600"}, free_port())
    owner = ServiceProcess("scorer", base, free_port())
    yield zombie, owner
    for p in (zombie, owner):
        if p.proc is not None and p.proc.poll() is None:
            os.kill(p.proc.pid, signal.SIGCONT)
        p.stop()


async def test_a_paused_scorer_wakes_after_losing_its_partitions_and_does_not_commit(
    sandbox: Sandbox, two_scorers: tuple[ServiceProcess, ServiceProcess]
) -> None:
    zombie, owner = two_scorers
    per_account = {a: account_events(a) for a in (f"acct-{n:03d}" for n in range(20))}
    first = [e for evs in per_account.values() for e in evs[: len(evs) // 2]]
    second = [e for evs in per_account.values() for e in evs[len(evs) // 2 :]]
    await produce(sandbox.settings, first)
    zombie.start().wait_ready(60)
    processed = (
        'churnwatch_consumer_records_total{group="' + sandbox.settings.topic_prefix + '.scorer",outcome="processed"}'
    )
    await await_until(
        lambda: _at_least(zombie, processed, len(first)), within=60, what="the zombie folded the first half"
    )  # fmt: skip
    assert (await _table(sandbox))[1] == {}, "the zombie must hold the first half in memory only"
    assert zombie.proc is not None
    os.kill(zombie.proc.pid, signal.SIGSTOP)

    await produce(sandbox.settings, second)
    owner.start().wait_ready(60)  # its session outlives the zombie's: the group gives it every partition
    await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=90, what="the owner caught up")
    os.kill(zombie.proc.pid, signal.SIGCONT)
    await await_until(
        lambda: _at_least(zombie, 'churnwatch_scorer_checkpoints_total{outcome="fenced"}', 1),
        within=60,
        what="the woken zombie's checkpoint to be refused",
    )
    await produce(sandbox.settings, first[::7])  # duplicates, after the group settled on both
    await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=90, what="both caught up")

    events = first + second + first[::7]
    assert await stored_states(sandbox.engine) == recompute(events, WindowRules(key_features=KEY_FEATURES))
    signals = await read_topic(sandbox.settings, sandbox.settings.topics.signals)
    assert_no_signal_twice(signals)
