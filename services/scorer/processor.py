"""The scorer's steps around its resident accounts: decode and fold polled records in memory, checkpoint them
to PostgreSQL with the consumed offsets, claim and release partitions, sweep idle accounts, publish signals.

Each polled batch is folded in memory (``fold``); a checkpoint (``checkpoint``, driven by the loop every
``CHURNWATCH_CHECKPOINT_INTERVAL_SECONDS``, ``CHURNWATCH_CHECKPOINT_EVENTS`` records or
``CHURNWATCH_CHECKPOINT_ACCOUNTS`` changed accounts, and at once when live traffic
raised signals, which are then published without waiting out the interval) writes the changed accounts, their
new event keys, score history, queued signals, profiles, partition clocks and the next offsets in one
transaction, fenced by the partitions' epochs (``checkpoint_store``). While events keep coming, that transaction
runs while the next batches fold (their changes go to the next checkpoint; ``settle`` applies its outcome, and a
failed one's rows are pending again). A crash loses only what came after the
last checkpoint, and the restart reads it again from the stored offsets: the same records give the same state
and the same signal ids, so the effect is exactly once. The read API reads PostgreSQL: it lags by up to one
checkpoint interval.

The clock: each partition's latest event time (``scorer_clock``, written with the checkpoint). A sweep closes,
at that clock, the days of accounts on this instance's partitions that were last evaluated on an earlier day,
so inactivity and days-to-renewal advance for accounts that send nothing (a page of them per interval while
events flow, all of them once caught up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scorer import checkpoint_store, store
from services.scorer.checkpoint_store import PartitionsLost
from services.scorer.data_problem_edge import DataProblemEdge
from services.scorer.decode import ScorerEvent, decode_scorer_event
from services.scorer.evaluate import ScoringConfig
from services.scorer.resident import CheckpointRows, ResidentAccounts
from shared.accounts import AccountProfile
from shared.consumer_loop import Rejected
from shared.offsets import load_offsets
from shared.settings import Topics

log = logging.getLogger(__name__)

EVENTS = Counter("churnwatch_scorer_events_total", "Events seen by the scorer", ["outcome"])
SIGNALS = Counter("churnwatch_scorer_signals_total", "Risk signals emitted", ["signal_type", "recovered"])
PRUNED = Counter("churnwatch_scorer_dedup_pruned_total", "Days of event ids forgotten once too late to count anyway")
SWEPT = Counter("churnwatch_scorer_swept_accounts_total", "Idle accounts re-evaluated by the clock sweep")
CHECKPOINTS = Counter("churnwatch_scorer_checkpoints_total", "Checkpoints written", ["outcome"])
RESIDENT = Gauge("churnwatch_scorer_resident_accounts", "Accounts held in memory by this instance")
EVICTED = Counter("churnwatch_scorer_evicted_accounts_total", "Clean accounts dropped from memory beyond the budget")
CHECKPOINT_SECONDS = Histogram(
    "churnwatch_scorer_checkpoint_seconds",
    "A checkpoint's parts: taking its rows (the fold waits) and its transaction (beside the fold while events flow)",
    ["part"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
for _part in ("rows", "transaction"):
    CHECKPOINT_SECONDS.labels(_part)
CHECKPOINT_ACCOUNTS = Histogram(
    "churnwatch_scorer_checkpoint_accounts",
    "Accounts written per checkpoint (at most CHURNWATCH_CHECKPOINT_ACCOUNTS, plus a poll's)",
    buckets=(1, 10, 100, 1000, 5000, 10_000, 20_000, 50_000, 100_000),
)
_PROFILE_MARGIN = timedelta(seconds=10)  # a profile's stamp is its transaction's start, committed a little later
# Signals about the last two days (live traffic, not a replay) are checkpointed, and so published, at most this
# soon after the last checkpoint rather than at the interval: the scorer's share of event -> Slack latency.
_LIVE_SIGNAL_AGE = timedelta(days=2)
_LIVE_SIGNAL_SPACING_S = 0.05
# Events folded between two yields to the event loop, where the consumer's heartbeat and a checkpoint's
# transaction in flight take their turn (each of its statements waits for one: 2,000 made a checkpoint of 10k
# accounts take longer than the interval). Folding slices in order is folding smaller batches: the same state and
# signals (day closes decide, never batch boundaries).
_FOLD_SLICE = 1000


class ScoringProcessor:
    def __init__(
        self,
        *,
        topics: Topics,
        producer: AIOKafkaProducer,
        sessions: async_sessionmaker[AsyncSession],
        config: ScoringConfig,
        group_id: str = "scorer",
        owner: str = "scorer",
        sweep_interval_s: float = 5.0,
        sweep_batch: int = 500,
        prune_interval_s: float = 300.0,
        max_resident: int = 20_000,
    ) -> None:
        self._topics = topics
        self._producer = producer
        self.sessions = sessions
        self._config = config
        self.group_id = group_id
        self._owner = owner
        self._sweep_interval_s = sweep_interval_s
        self._sweep_batch = sweep_batch
        self._last_sweep = time.monotonic()  # the first sweep one interval after start
        self._prune_interval_s = prune_interval_s
        self._last_prune = time.monotonic()
        self.resident = ResidentAccounts(config, max_resident=max_resident)
        self.epochs: dict[TopicPartition, int] = {}  # the partitions this instance claimed, and their epochs
        self.positions: dict[TopicPartition, int] = {}  # the next offset to fold, per owned partition
        self._written: dict[TopicPartition, int] = {}  # the offsets the last checkpoint stored
        self.last_checkpoint = time.monotonic()
        self._profiles_since = datetime.now(UTC)
        # True while the outbox may hold rows: at start (a previous run may have left some), after a checkpoint
        # queued signals, and while a publish found a full page. Other steps skip the outbox query.
        self._outbox_pending = True
        self.data_problems = DataProblemEdge(self.resident, sessions)
        self._live_signals = False  # signals of recent days wait to be checkpointed
        # a checkpoint's transaction in flight (with its rows and offsets), and whether the last one failed
        self._writing: tuple[asyncio.Task[None], CheckpointRows, dict[TopicPartition, int]] | None = None
        self._write_failed = False

    def owned_partitions(self) -> set[int]:
        return {tp.partition for tp in self.epochs if tp.topic == self._topics.events}

    async def assign(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Claim ``tps`` (fencing their earlier owners), then read where to start: the stored offsets."""
        async with self.sessions() as session, session.begin():
            self.epochs.update(await checkpoint_store.claim_partitions(session, self.group_id, self._owner, tps))
        async with self.sessions() as session:
            stored = await load_offsets(session, self.group_id, tps)
            events = [tp.partition for tp in tps if tp.topic == self._topics.events]
            self.resident.watches.load(await checkpoint_store.load_watches(session, self._topics.events, events))
        self.positions.update(stored)
        self._written.update(stored)
        self._outbox_pending = True  # its previous owner may have left queued signals
        return stored

    def start_at(self, tp: TopicPartition, offset: int) -> None:
        """A partition with no stored offset starts at the beginning the consumer found."""
        self.positions[tp] = offset

    async def revoke(self, tps: Collection[TopicPartition]) -> None:
        """Checkpoint, then forget the partitions: the next owner starts where this one stopped."""
        try:
            await self.checkpoint()
        except PartitionsLost as exc:
            self.forget(exc.lost)
            await self.checkpoint()
        finally:
            self.forget(tps)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop the partitions and everything not written for them (revoked, or claimed by another instance)."""
        tps = set(tps)
        events = {tp.partition for tp in tps if tp.topic == self._topics.events}
        accounts = {tp.partition for tp in tps if tp.topic == self._topics.accounts}
        self.resident.drop_partitions(events, accounts)
        for tp in tps:
            self.epochs.pop(tp, None)
            self.positions.pop(tp, None)
            self._written.pop(tp, None)
        RESIDENT.set(len(self.resident.accounts))

    async def fold(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Rejected]:
        """Decode and fold a polled batch into the resident accounts (reading the ones not resident first)."""
        rejected: list[Rejected] = []
        profiles: list[tuple[AccountProfile, int]] = []
        events: list[tuple[ScorerEvent, int]] = []
        for r in records:
            if r.topic == self._topics.accounts:
                if r.value is None:
                    continue  # a tombstone: the profile stays until a new one arrives
                try:
                    profiles.append((AccountProfile.model_validate_json(r.value), r.partition))
                except ValidationError as exc:
                    rejected.append(Rejected(r, f"invalid account profile: {exc.errors()[:3]}"))
                continue
            try:
                events.append((decode_scorer_event(r.value or b""), r.partition))
            except ValidationError as exc:
                EVENTS.labels("invalid").inc()
                rejected.append(Rejected(r, f"invalid event: {exc.errors()[:3]}"))
        await self._make_resident({e.account_id: p for e, p in events})
        for profile, partition in profiles:
            self.resident.set_profile(profile, partition)
        queued = len(self.resident.pending.signals)
        for at in range(0, len(events), _FOLD_SLICE):
            counts = self.resident.fold(events[at : at + _FOLD_SLICE])
            EVENTS.labels("duplicate").inc(counts.duplicate)
            EVENTS.labels("too_late").inc(counts.too_late)
            EVENTS.labels("counted").inc(counts.counted)
            self.data_problems.count_held()
            await asyncio.sleep(0)  # let the consumer's heartbeat run: a long fold must not cost the group
        recent = datetime.now(UTC) - _LIVE_SIGNAL_AGE
        self._live_signals |= any(s.occurred_at >= recent for s in self.resident.pending.signals[queued:])
        ends: dict[tuple[str, int], int] = {}
        for r in records:  # a TopicPartition per partition, not per record
            ends[r.topic, r.partition] = r.offset + 1
        for (topic, partition), end in ends.items():
            self.positions[TopicPartition(topic, partition)] = end
        return rejected

    async def _make_resident(self, partition_of: dict[str, int | None]) -> None:
        missing = self.resident.missing(partition_of)
        if not missing:
            return
        async with self.sessions() as session:
            loaded = await checkpoint_store.load_accounts(session, missing, self._config.rules.grace_days)
        self.resident.admit(loaded, missing, {a: p for a, p in partition_of.items() if p is not None})
        RESIDENT.set(len(self.resident.accounts))

    def checkpoint_due(self, interval_s: float, max_events: int, max_accounts: int) -> bool:
        r = self.resident
        if len(r.accounts) > r.max_resident:
            return True
        since = time.monotonic() - self.last_checkpoint
        if self._live_signals and since >= _LIVE_SIGNAL_SPACING_S:
            return True  # a day close of today's traffic raised signals: someone is waiting for them
        waited = since >= interval_s
        if r.pending.events >= max_events or len(r.pending.dirty) >= max_accounts:
            return True
        return waited and (r.dirty or self.positions != self._written)

    async def checkpoint(self, *, wait: bool = True) -> bool:
        """Write what changed since the last checkpoint with the next offsets, in one transaction; False if
        there was nothing to write. Raises PartitionsLost (nothing written) if another instance claimed one.

        ``wait=False`` (events keep coming): the rows are taken and encoded now and the transaction runs while
        the loop folds the next batches; ``settle`` (first thing in the next checkpoint, or the loop's once the
        transaction is done) applies its outcome. It waits all the same when live signals are queued (someone
        waits for them) or the last one failed (so a failing PostgreSQL holds the loop back with its backoff)."""
        await self.settle()
        wait = wait or self._write_failed or self._live_signals  # someone waits for those signals: publish now
        self.last_checkpoint = time.monotonic()
        self._live_signals = False
        offsets = {tp: off for tp, off in self.positions.items() if self._written.get(tp) != off}
        if not offsets and not self.resident.dirty:
            return False
        started = time.perf_counter()
        taking = self.resident.start_taking_rows(dict(self.epochs), offsets)
        taken = False
        try:
            while not taken:
                taken = taking.step()
                await asyncio.sleep(0)  # the heartbeat and the API between slices: nothing else touches the records
        except BaseException:  # cancelled (a shutdown) between slices: nothing was written, it is all pending again
            self.resident.restore()
            raise
        rows = taking.rows()
        CHECKPOINT_SECONDS.labels("rows").observe(time.perf_counter() - started)
        CHECKPOINT_ACCOUNTS.observe(len(rows.health))
        self._writing = asyncio.create_task(self._write(rows)), rows, offsets
        if wait:
            await self.settle()
        return True

    async def _write(self, rows: CheckpointRows) -> None:
        started = time.perf_counter()
        async with self.sessions() as session, session.begin():
            await checkpoint_store.write_checkpoint(session, self.group_id, self._topics.events, rows)
        CHECKPOINT_SECONDS.labels("transaction").observe(time.perf_counter() - started)

    @property
    def writing(self) -> bool:
        """A checkpoint's transaction is in flight (or done and not settled yet)."""
        return self._writing is not None

    def write_done(self) -> bool:
        """A checkpoint's transaction finished in the background and waits for ``settle``."""
        return self._writing is not None and self._writing[0].done()

    async def settle(self) -> None:
        """The outcome of the checkpoint in flight, if any: once committed, its offsets count as written, its
        signals wait in the outbox, and clean accounts beyond the budget go; if it failed its rows are pending
        again (under what was folded since) and the error is raised."""
        if self._writing is None:
            return
        task, rows, offsets = self._writing
        self._writing = None
        try:
            await task
        except BaseException as exc:
            self.resident.restore()
            self._write_failed = True
            CHECKPOINTS.labels("fenced" if isinstance(exc, PartitionsLost) else "failed").inc()
            raise
        self._write_failed = False
        self.resident.checkpointed()
        self._written.update(offsets)
        self.data_problems.show_open()
        CHECKPOINTS.labels("written").inc()
        for s in rows.signals:
            SIGNALS.labels(s.signal_type.value, str(s.recovered).lower()).inc()
        self._outbox_pending = self._outbox_pending or bool(rows.signals)
        EVICTED.inc(self.resident.evict())
        RESIDENT.set(len(self.resident.accounts))
        await self._refresh_profiles()
        await self.data_problems.refresh_releases()

    def written_offsets(self) -> dict[TopicPartition, int]:
        """The offsets the last committed checkpoint stored."""
        return dict(self._written)

    async def _refresh_profiles(self) -> None:
        """Profiles another instance consumed (the accounts topic's partitions need not line up with events')."""
        async with self.sessions() as session:
            changed, newest = await checkpoint_store.changed_profiles(session, self._profiles_since - _PROFILE_MARGIN)
        self._profiles_since = max(self._profiles_since, newest)
        for a, profile in changed.items():
            if a in self.resident.accounts and a not in self.resident.pending.profiles:
                self.resident.profiles[a] = profile

    async def sweep(self, *, caught_up: bool = True) -> int:
        """Close the days of idle accounts of this instance's partitions up to the clock; returns how many.

        While events flow, each partition's accounts go by that partition's own clock: in a replay one partition
        can be days ahead of another, and its clock would close days whose events are still unread elsewhere.
        Once caught up, every partition goes by the latest clock, so a partition whose accounts all went silent
        still sees the days pass, and the sweep checkpoints first (so the table it searches holds what memory
        holds) and after (the next page is searched in the table). While events flow it waits for no checkpoint:
        the table lags memory by up to one, so memory decides for the accounts it holds, and what it closes goes
        out with the next checkpoint."""
        partitions = self.owned_partitions()
        if not partitions:
            return 0
        if caught_up:
            await self.checkpoint()
        async with self.sessions() as session:
            known = await store.read_clocks(session, self._topics.events)
            if not known:
                return 0
            latest = max(known.values())
            clocks = {p: latest if caught_up else known[p] for p in partitions if caught_up or p in known}
            stale = await checkpoint_store.stale_accounts(session, clocks, self._sweep_batch)
        due = self.resident.still_open(stale, clocks)
        if not due:
            return 0
        await self._make_resident(dict(due))
        self.resident.sweep({a: clocks[p] for a, p in due.items()})
        self.data_problems.count_held()
        if caught_up:
            await self.checkpoint()
        SWEPT.inc(len(due))
        return len(due)

    async def _maybe_sweep(self, *, caught_up: bool) -> None:
        """Caught up (a poll found nothing), the sweep goes through every stale account. While events flow it
        does one page per interval: the accounts that send events are re-evaluated by them anyway, and a
        replay moving the clock days a second would otherwise spend its time sweeping every account."""
        if time.monotonic() - self._last_sweep < self._sweep_interval_s:
            return
        self._last_sweep = time.monotonic()
        while await self.sweep(caught_up=caught_up) >= self._sweep_batch and caught_up:
            pass
        await self.publish_outbox()
        if time.monotonic() - self._last_prune >= self._prune_interval_s:
            self._last_prune = time.monotonic()
            await self.prune_dedup()

    async def prune_dedup(self) -> int:
        """Drop event ids of this instance's accounts that can no longer count (older than watermark - grace)."""
        await self.checkpoint()
        self.resident.forget_old_keys()
        async with self.sessions() as session, session.begin():
            gone = await store.prune_seen_events(session, list(self.owned_partitions()), self._config.rules.grace_days)
        PRUNED.inc(gone)
        return gone

    async def after_checkpoint(self) -> None:
        if self._outbox_pending:
            await self.publish_outbox()
        await self._maybe_sweep(caught_up=False)

    async def on_idle(self) -> None:
        await self.publish_outbox()
        await self.data_problems.refresh_releases()
        await self._maybe_sweep(caught_up=True)

    async def publish_outbox(self, limit: int = 1000) -> int:
        """Publish queued signals, then delete them. A crash in between republishes the same signal ids,
        which the alerter drops, so each signal takes effect once."""
        if not self._outbox_pending:
            return 0
        self._outbox_pending = False  # set again by a checkpoint that queues signals meanwhile
        try:
            published = await self._publish_page(limit)
        except BaseException:
            self._outbox_pending = True
            raise
        if published >= limit:
            self._outbox_pending = True
        return published

    async def _publish_page(self, limit: int) -> int:
        async with self.sessions() as session, session.begin():
            rows = await store.outbox_page(session, limit)
            if not rows:
                return 0
            futures = [
                await self._producer.send(self._topics.signals, key=account_id.encode(), value=payload)
                for _, account_id, payload in rows
            ]
            for f in futures:
                await f
            await store.drop_from_outbox(session, [signal_id for signal_id, _, _ in rows])
        return len(rows)
