"""Sandboxes leave nothing on the shared broker: their topics go with them, and those of killed runs are swept."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.demo.sandbox import SandboxName, delete_orphaned_topics, private_sandbox
from shared.kafka import create_topics
from shared.settings import CommonSettings
from tests.support.polling import await_until

pytestmark = pytest.mark.integration


async def topics_with(prefix: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=CommonSettings().kafka_bootstrap_servers)
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if t.startswith(prefix)}
    finally:
        await admin.close()


async def test_orphaned_sandbox_topics_are_swept_and_live_ones_kept(local_stack: None) -> None:
    killed = SandboxName.fresh("test")  # topics made, schema never made (or dropped): a run killed mid-way
    await create_topics(killed.settings())
    assert len(await topics_with(f"{killed.topic_prefix}.")) == 4
    async with private_sandbox("test") as (live, _):
        await delete_orphaned_topics(CommonSettings())
        await await_until(
            lambda: _gone(killed.topic_prefix), within=30, what="the orphaned topics to be deleted", interval=0.2
        )
        assert len(await topics_with(f"{live.topic_prefix}.")) == 4
    await await_until(lambda: _gone(live.topic_prefix), within=30, what="the sandbox's own topics to go with it")


async def _gone(prefix: str) -> bool:
    return not await topics_with(f"{prefix}.")
