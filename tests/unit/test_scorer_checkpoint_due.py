"""When the scorer checkpoints: after the interval with something to write, or at once after N records or once N
accounts changed (a replay touching 100k accounts must not gather them all into one checkpoint: its rows' memory,
its transaction and the pause while they are encoded, which starved the group heartbeat, grow with them); and a
checkpoint interrupted while it takes its rows loses none of them."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from aiokafka import TopicPartition

from services.scorer import resident as resident_module
from services.scorer.decode import decode_scorer_event
from services.scorer.evaluate import ScoringConfig
from services.scorer.processor import ScoringProcessor
from services.scorer.resident import Loaded
from shared.settings import Topics

_HOUR = 3600.0


def _processor_with_changes(accounts: int, events_each: int) -> ScoringProcessor:
    processor = ScoringProcessor(
        topics=Topics("due.events", "due.accounts", "due.signals", "due.deadletter"),
        producer=cast(Any, None),
        sessions=cast(Any, None),
        config=ScoringConfig(),
    )
    events = [
        (
            decode_scorer_event(
                json.dumps(
                    {"event_id": f"{a}-{i}", "account_id": f"acct-{a}", "kind": "usage", "action": "login"}
                    | {"occurred_at": f"2026-11-{1 + i:02d}T10:00:00+00:00", "user_id": "u1"}
                ).encode()
            ),
            0,
        )
        for i in range(events_each)
        for a in range(accounts)
    ]
    resident = processor.resident
    resident.admit(Loaded(), resident.missing(e.account_id for e, _ in events), {})
    resident.fold(events)
    return processor


def test_a_checkpoint_is_due_once_so_many_accounts_changed_before_the_interval() -> None:
    processor = _processor_with_changes(accounts=5, events_each=2)
    assert not processor.checkpoint_due(_HOUR, max_events=1000, max_accounts=6)
    assert processor.checkpoint_due(_HOUR, max_events=1000, max_accounts=5)


def test_a_checkpoint_is_due_after_so_many_records_before_the_interval() -> None:
    processor = _processor_with_changes(accounts=5, events_each=2)
    assert not processor.checkpoint_due(_HOUR, max_events=11, max_accounts=1000)
    assert processor.checkpoint_due(_HOUR, max_events=10, max_accounts=1000)


def test_after_the_interval_a_checkpoint_is_due_with_anything_to_write() -> None:
    processor = _processor_with_changes(accounts=1, events_each=1)
    assert processor.checkpoint_due(0.0, max_events=1000, max_accounts=1000)
    assert not _processor_with_changes(accounts=0, events_each=0).checkpoint_due(0.0, 1000, 1000)


async def test_a_checkpoint_cancelled_while_taking_its_rows_leaves_them_all_pending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between two slices of rows the loop lets others run, and a shutdown may cancel it there: nothing was written,
    so every change must still be pending for the final checkpoint (else its offsets would go out without them)."""
    processor = _processor_with_changes(accounts=5, events_each=2)
    processor.positions[TopicPartition("due.events", 0)] = 10
    monkeypatch.setattr(resident_module, "ROWS_SLICE", 2)
    checkpoint = asyncio.create_task(processor.checkpoint())
    await asyncio.sleep(0)  # it takes the first slice and pauses
    checkpoint.cancel()
    with pytest.raises(asyncio.CancelledError):
        await checkpoint
    assert len(processor.resident.pending.dirty) == 5
    assert processor.resident.pending.events == 10
