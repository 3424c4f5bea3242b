"""The claim that fences a slow instance (shared/offsets.py), against the real PostgreSQL schema."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.offsets import Fenced, claim_offsets, load_offsets
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until

pytestmark = pytest.mark.integration

P0, P1 = TopicPartition("t.events", 0), TopicPartition("t.events", 1)


async def claim(sandbox: Sandbox, first: dict[TopicPartition, int], following: dict[TopicPartition, int]) -> None:
    async with AsyncSession(sandbox.engine) as session, session.begin():
        await claim_offsets(session, "g", first, following)


async def stored(sandbox: Sandbox) -> dict[TopicPartition, int]:
    async with AsyncSession(sandbox.engine) as session:
        return await load_offsets(session, "g", [P0, P1])


async def test_a_batch_already_committed_by_another_instance_is_fenced(sandbox: Sandbox) -> None:
    await claim(sandbox, {P0: 0, P1: 0}, {P0: 100, P1: 40})
    # the instance that lost the partitions still holds the same batch: nothing of it may be written
    with pytest.raises(Fenced, match=r"t.events\[0\] was already committed past offset 0"):
        await claim(sandbox, {P0: 0}, {P0: 100})
    with pytest.raises(Fenced):  # one partition moved on, the other not: the whole batch is refused
        await claim(sandbox, {P0: 100, P1: 20}, {P0: 150, P1: 60})
    assert await stored(sandbox) == {P0: 100, P1: 40}
    await claim(sandbox, {P0: 100, P1: 40}, {P0: 150, P1: 60})  # the owner goes on
    await claim(sandbox, {P0: 170}, {P0: 180})  # a gap (compaction) is not a conflict
    assert await stored(sandbox) == {P0: 180, P1: 60}


async def test_two_instances_racing_for_one_batch_serialise_and_one_is_fenced(sandbox: Sandbox) -> None:
    async with AsyncSession(sandbox.engine) as first, first.begin():
        await claim_offsets(first, "g", {P0: 0}, {P0: 50})
        racer = asyncio.create_task(claim(sandbox, {P0: 0}, {P0: 50}))
        await await_until(lambda: _waiting_on_a_lock(sandbox), within=10, what="the racer to wait on the row lock")
        assert not racer.done()
    with pytest.raises(Fenced):
        await racer
    assert await stored(sandbox) == {P0: 50}


async def _waiting_on_a_lock(sandbox: Sandbox) -> bool:
    async with sandbox.engine.connect() as conn:
        query = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO consumer_offsets%'"
        )
        return int((await conn.execute(query)).scalar_one()) > 0
