"""Old event ids are forgotten only once they can no longer count: against the real PostgreSQL schema."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scorer import store
from services.scorer.dedup import event_key
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration


async def test_prune_keeps_ids_inside_the_grace_period_and_other_partitions(sandbox: Sandbox) -> None:
    async with sandbox.engine.begin() as conn:
        for account, partition, watermark in [("a", 0, "2026-11-20T23:30:00+00:00"), ("b", 1, "2026-11-20T10:00:00Z")]:
            await conn.execute(
                text(
                    "INSERT INTO account_health (account_id, state, components, active_signals, partition)"
                    " VALUES (:a, CAST(:s AS jsonb), '[]', '{}', :p)"
                ),
                {"a": account, "s": json.dumps({"wm": watermark}), "p": partition},
            )
            for day in (date(2026, 11, 12), date(2026, 11, 13), date(2026, 11, 20)):
                await conn.execute(
                    text("INSERT INTO seen_event_days (account_id, day, ids) VALUES (:a, :d, :ids)"),
                    {"a": account, "d": day, "ids": event_key(f"{account}-{day}")},
                )
    async with AsyncSession(sandbox.engine) as session, session.begin():
        gone = await store.prune_seen_events(session, [0], grace_days=7)
    async with sandbox.engine.connect() as conn:
        left = (
            (await conn.execute(text("SELECT account_id || '-' || day FROM seen_event_days ORDER BY 1")))
            .scalars()
            .all()
        )
    # account a (partition 0, watermark day 2026-11-20, grace 7): ids before 2026-11-13 can no longer count
    assert gone == 1
    assert left == ["a-2026-11-13", "a-2026-11-20", "b-2026-11-12", "b-2026-11-13", "b-2026-11-20"]
