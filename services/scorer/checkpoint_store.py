"""The scorer's checkpoint in PostgreSQL: partition ownership epochs, loading resident accounts, and one
transaction that writes everything a checkpoint holds. Every function takes the caller's session.

Fencing: on assignment an instance bumps each partition's epoch (``claim_partitions``) before it reads the stored
offsets; a checkpoint first locks its partitions' epoch rows and goes on only if every one still carries the
epoch this instance claimed (``check_epochs``). So an instance that lost a partition (paused past its session
timeout, say) can never commit for it again, even before the new owner has committed anything; and the row locks
order a last checkpoint of the old owner strictly before the new owner's read of the offsets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scorer import dedup, store
from services.scorer.record_rows import RECORD_COLUMNS, record_from_row
from services.scorer.resident import CheckpointRows, Loaded
from shared.accounts import AccountProfile
from shared.offsets import Fenced

_CLAIM = text(
    "INSERT INTO scorer_partition_epochs (group_id, topic, partition, epoch, owner)"
    " SELECT :group_id, t, p, 1, :owner FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[])) AS w(t, p)"
    " ORDER BY t, p"
    " ON CONFLICT (group_id, topic, partition) DO UPDATE SET epoch = scorer_partition_epochs.epoch + 1,"
    " owner = excluded.owner, claimed_at = now()"
    " RETURNING topic, partition, epoch"
)
_LOCK_EPOCHS = text(
    "SELECT topic, partition, epoch FROM scorer_partition_epochs"
    " WHERE group_id = :group_id AND (topic, partition) IN"
    " (SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[])))"
    " ORDER BY topic, partition FOR UPDATE"
)
_SAVE_OFFSETS = text(
    "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)"
    " SELECT :group_id, t, p, o FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]),"
    " CAST(:offsets AS bigint[])) AS w(t, p, o) ORDER BY t, p"
    " ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
)
_LOAD = text(
    "SELECT " + ", ".join(RECORD_COLUMNS) + ", partition FROM account_health"
    " WHERE account_id = ANY(CAST(:ids AS text[]))"
)
_SAVE_WATCHES = text(
    "INSERT INTO scorer_partition_watch (topic, partition, watch)"
    " SELECT :topic, p, CAST(w AS jsonb) FROM unnest(CAST(:partitions AS int[]), CAST(:watches AS text[])) AS u(p, w)"
    " ORDER BY p ON CONFLICT (topic, partition) DO UPDATE SET watch = excluded.watch, updated_at = now()"
)
_LOAD_WATCHES = text(
    "SELECT partition, watch FROM scorer_partition_watch"
    " WHERE topic = :topic AND partition = ANY(CAST(:partitions AS int[]))"
)
_PROFILES = text("SELECT account_id, profile FROM account_profiles WHERE account_id = ANY(CAST(:ids AS text[]))")
_CHANGED_PROFILES = text("SELECT account_id, profile, updated_at FROM account_profiles WHERE updated_at > :since")
_STALE = text(
    "SELECT account_id, partition FROM account_health h"
    " JOIN unnest(CAST(:partitions AS int[]), CAST(:before AS date[])) AS c(p, before)"
    " ON h.partition = c.p AND h.closed_on < c.before ORDER BY h.closed_on LIMIT :limit"
)


def _parts(tps: Iterable[TopicPartition]) -> tuple[list[TopicPartition], dict[str, list[Any]]]:
    ordered = sorted(set(tps), key=lambda t: (t.topic, t.partition))
    return ordered, {"topics": [t.topic for t in ordered], "partitions": [t.partition for t in ordered]}


async def claim_partitions(
    session: AsyncSession, group_id: str, owner: str, tps: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """Take ownership of ``tps``: each epoch goes up by one (fencing every earlier owner); returns the new epochs."""
    ordered, params = _parts(tps)
    if not ordered:
        return {}
    rows = await session.execute(_CLAIM, {"group_id": group_id, "owner": owner, **params})
    return {TopicPartition(r.topic, r.partition): int(r.epoch) for r in rows}


async def check_epochs(session: AsyncSession, group_id: str, epochs: Mapping[TopicPartition, int]) -> None:
    """Lock the partitions' epoch rows until commit; Fenced (naming the lost ones) unless all are still ours."""
    ordered, params = _parts(epochs)
    if not ordered:
        return
    rows = await session.execute(_LOCK_EPOCHS, {"group_id": group_id, **params})
    stored = {TopicPartition(r.topic, r.partition): int(r.epoch) for r in rows}
    lost = [tp for tp in ordered if stored.get(tp) != epochs[tp]]
    if lost:
        raise PartitionsLost(lost)


class PartitionsLost(Fenced):
    """Another instance claimed these partitions since this one did: nothing of the checkpoint was written."""

    def __init__(self, lost: list[TopicPartition]) -> None:
        self.lost = lost
        super().__init__("claimed by another instance: " + ", ".join(f"{t.topic}[{t.partition}]" for t in lost))


async def load_accounts(session: AsyncSession, ids: Collection[str], grace_days: int) -> Loaded:
    """The accounts' records, the event keys that can still count (see ``dedup.first_sightings``) and profiles."""
    out = Loaded()
    if not ids:
        return out
    wanted = list(ids)
    for n, r in enumerate(await session.execute(_LOAD, {"ids": wanted})):
        out.records[r.account_id] = record_from_row(r)
        out.partitions[r.account_id] = r.partition
        if n % 2000 == 1999:
            await asyncio.sleep(0)  # thousands of rows to decode: let the consumer's heartbeat run
    grace = timedelta(days=grace_days)
    since = [
        wm.date() - grace if (rec := out.records.get(a)) and (wm := rec.state.watermark) else date.min for a in wanted
    ]
    rows = await session.execute(store.SEEN_KEYS, {"accounts": wanted, "since": since})
    for account_id, day, ids_blob in sorted(rows, key=lambda r: r.day):  # a key counted on two days: the later
        out.seen.setdefault(account_id, {}).update(dict.fromkeys(dedup.keys_of(ids_blob), day))
    for r in await session.execute(_PROFILES, {"ids": wanted}):
        out.profiles[r.account_id] = AccountProfile.model_validate(r.profile)
    return out


async def load_watches(session: AsyncSession, events_topic: str, partitions: Collection[int]) -> dict[int, Any]:
    """The checkpointed data-quality watches of these events partitions (a partition never watched has none)."""
    if not partitions:
        return {}
    rows = await session.execute(_LOAD_WATCHES, {"topic": events_topic, "partitions": sorted(partitions)})
    return {int(r.partition): r.watch for r in rows}


async def changed_profiles(session: AsyncSession, since: datetime) -> tuple[dict[str, AccountProfile], datetime]:
    """Profiles written since ``since`` (by this or another instance), and the newest stamp seen."""
    newest, out = since, {}
    for r in await session.execute(_CHANGED_PROFILES, {"since": since}):
        out[r.account_id] = AccountProfile.model_validate(r.profile)
        newest = max(newest, r.updated_at)
    return out, newest


async def stale_accounts(session: AsyncSession, clocks: Mapping[int, datetime], limit: int) -> dict[str, int]:
    """Accounts of these partitions with a day before their partition's clock to close, the oldest first."""
    if not clocks:
        return {}
    params = {
        "partitions": list(clocks),
        "before": [c.date() - timedelta(days=1) for c in clocks.values()],
        "limit": limit,
    }
    return {r.account_id: int(r.partition) for r in await session.execute(_STALE, params)}


async def write_checkpoint(session: AsyncSession, group_id: str, events_topic: str, rows: CheckpointRows) -> None:
    """One transaction (the caller's): fencing check first, then state, keys, history, signals, clock, watches,
    offsets."""
    await check_epochs(session, group_id, rows.epochs)
    await store.upsert_profiles(session, rows.profiles)
    await store.save_health(session, rows.health)
    if rows.seen_keys:
        keys = rows.seen_keys
        added = {"accounts": [a for a, _ in keys], "days": [d for _, d in keys], "ids": list(keys.values())}
        await session.execute(store.ADD_SEEN_KEYS, added)
    await store.save_score_history(session, rows.history)
    await store.queue_signals(session, rows.signals)
    await store.advance_clock(session, events_topic, rows.clocks)
    if rows.watches:
        watches = sorted(rows.watches.items())
        stored = {"partitions": [p for p, _ in watches], "watches": [json.dumps(w) for _, w in watches]}
        await session.execute(_SAVE_WATCHES, {"topic": events_topic, **stored})
    if rows.offsets:
        ordered, params = _parts(rows.offsets)
        offsets = [rows.offsets[tp] for tp in ordered]
        await session.execute(_SAVE_OFFSETS, {"group_id": group_id, **params, "offsets": offsets})
