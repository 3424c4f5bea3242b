"""The accounts of this instance's partitions, kept in memory between checkpoints. Pure: no I/O, no clock.

Each resident account holds its record (window state, last close, active signals, history) and the keys of the
events that can still count for it. Folding a batch deduplicates, evaluates and marks accounts *dirty*; what the
checkpoint must write (health rows, score-history rows, new event keys, queued signals, profiles, partition
clocks) accumulates in ``Pending``, each row once however many batches touched it. ``take_rows`` encodes a
checkpoint; ``checkpointed`` forgets what it wrote, and ``restore`` puts it back under newer writes if it failed.

Memory: a resident account costs about ``RESIDENT_BYTES_PER_ACCOUNT`` (measured by bench.scorer); beyond
``max_resident`` the least recently touched accounts that are clean (written by a checkpoint) are dropped and
read again from PostgreSQL on their next event. Dirty ones are never dropped: the caller checkpoints first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any

from aiokafka import TopicPartition

from services.scorer import dedup
from services.scorer.churn_risk import RiskReading
from services.scorer.decode import ScorerEvent
from services.scorer.evaluate import AccountRecord, Evaluation, ScoringConfig, TipScore, evaluate_account
from services.scorer.record_rows import record_to_row
from services.scorer.scoring import HealthScore
from services.scorer.watches import PartitionWatches
from services.scorer.windows import AccountState
from shared.accounts import AccountProfile
from shared.signals import RiskSignal

# Measured by bench.scorer (tracemalloc): an account sending ~15 events a day holds ~30 KB, most of it the keys of
# the events that can still count (the grace period); one sending a few a day ~10 KB. The stored row is < 1 KB.
RESIDENT_BYTES_PER_ACCOUNT = 30_000
ROWS_SLICE = 1000  # accounts a checkpoint takes between two pauses (~0.1 s)


@dataclass
class Loaded:
    """Accounts read from PostgreSQL on their first event since assignment (or eviction)."""

    records: dict[str, AccountRecord] = field(default_factory=dict)
    partitions: dict[str, int | None] = field(default_factory=dict)
    seen: dict[str, dict[bytes, date]] = field(default_factory=dict)
    profiles: dict[str, AccountProfile] = field(default_factory=dict)


@dataclass
class CheckpointRows:
    """Everything one checkpoint writes, already encoded: the writes of many polled batches, each row once."""

    epochs: dict[TopicPartition, int]
    offsets: dict[TopicPartition, int]
    health: list[dict[str, Any]]
    history: list[dict[str, Any]]
    seen_keys: dict[tuple[str, date], bytes]
    signals: list[RiskSignal]
    profiles: dict[str, dict[str, Any]]
    clocks: dict[int, datetime]
    watches: dict[int, dict[str, Any]] = field(default_factory=dict)  # events partition -> its stored watch


@dataclass(slots=True)
class Resident:
    record: AccountRecord
    partition: int | None  # the events partition (None: known only from the table, e.g. a sweep's account)
    seen: dict[bytes, date]  # event key -> the day it was counted on


@dataclass(slots=True)
class _Tip:
    """What an account's health row needs beyond its record: the latest evaluation's tip and risk. The tip is
    scored, and both are worded, only once the row is written (a later batch's evaluation replaces most)."""

    score: TipScore | None
    risk: float | None = None
    reading: RiskReading | None = None  # the last close's estimate

    @property
    def health(self) -> HealthScore | None:
        return self.score.scored().health if self.score else None

    @property
    def explanation(self) -> str:
        return self.score.scored().explanation if self.score else ""

    @property
    def risk_explanation(self) -> str | None:
        return None if self.reading is None else self.reading.explanation


@dataclass
class Pending:
    dirty: dict[str, _Tip] = field(default_factory=dict)
    history: dict[tuple[str, date], dict[str, Any]] = field(default_factory=dict)
    seen_keys: dict[tuple[str, date], bytearray] = field(default_factory=lambda: defaultdict(bytearray))
    signals: list[RiskSignal] = field(default_factory=list)
    profiles: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # -> (accounts partition, json)
    clocks: dict[int, datetime] = field(default_factory=dict)
    watches: set[int] = field(default_factory=set)  # partitions whose data-quality watch moved
    events: int = 0

    def under(self, newer: Pending) -> Pending:
        """This (older, not written) pending with ``newer`` on top: what one checkpoint must now write."""
        for key, row in newer.history.items():
            _put_history(self.history, key, row)
        for key, ids in newer.seen_keys.items():
            self.seen_keys[key].extend(ids)
        for a, tip in newer.dirty.items():
            old = self.dirty.get(a)
            self.dirty[a] = _merge_tip(old, tip) if old else tip
        self.signals.extend(newer.signals)
        self.profiles.update(newer.profiles)
        for p, at in newer.clocks.items():
            self.clocks[p] = max(at, self.clocks.get(p, at))
        self.watches |= newer.watches
        self.events += newer.events
        return self

    def forget(
        self, accounts: Collection[str], events_partitions: Collection[int], accounts_partitions: Collection[int]
    ) -> None:
        """Drop what is pending for these accounts and partitions."""
        self.dirty = {a: t for a, t in self.dirty.items() if a not in accounts}
        self.history = {k: v for k, v in self.history.items() if k[0] not in accounts}
        self.seen_keys = defaultdict(bytearray, {k: v for k, v in self.seen_keys.items() if k[0] not in accounts})
        self.signals = [s for s in self.signals if s.account_id not in accounts]
        self.profiles = {a: v for a, v in self.profiles.items() if v[0] not in accounts_partitions}
        self.clocks = {q: at for q, at in self.clocks.items() if q not in events_partitions}
        self.watches -= set(events_partitions)


def _merge_tip(old: _Tip, new: _Tip) -> _Tip:
    if new.risk is None:  # an evaluation that closed no day keeps the last close's estimate
        new.risk, new.reading = old.risk, old.reading
    return new


def _put_history(rows: dict[tuple[str, date], dict[str, Any]], key: tuple[str, date], row: dict[str, Any]) -> None:
    old = rows.get(key)
    if old is not None and row.get("risk") is None and old.get("risk") is not None:
        row = {**row, "risk": old["risk"]}  # as the upsert does: coalesce(excluded.risk, stored risk)
    rows[key] = row


@dataclass(frozen=True)
class FoldCounts:
    duplicate: int
    too_late: int
    counted: int


class RowTaking:
    """A checkpoint's rows, taken ``ROWS_SLICE`` accounts at a time so the loop can let its heartbeat and the API
    run between slices (20,000 rows take ~2 s). The records must not change until all are taken (the caller
    holds the loop)."""

    def __init__(
        self,
        accounts: dict[str, Resident],
        pending: Pending,
        epochs: dict[TopicPartition, int],
        offsets: dict[TopicPartition, int],
        watches: dict[int, dict[str, Any]],
    ) -> None:
        self._accounts, self._pending = accounts, pending
        self._epochs, self._offsets, self._watches = epochs, offsets, watches
        self._dirty = iter(pending.dirty.items())
        self._health: list[dict[str, Any]] = []

    def step(self) -> bool:
        """Take the next slice of accounts' rows; True once every one is taken."""
        history = self._pending.history
        for a, tip in islice(self._dirty, ROWS_SLICE):
            r = self._accounts[a]
            h = tip.health
            if h is not None and tip.score is not None:  # the day in progress, until its close replaces it
                row = {"account_id": a, "day": tip.score.day, "score": h.score, "band": h.band}
                _put_history(history, (a, tip.score.day), row)
            self._health.append(
                {"account_id": a, **record_to_row(r.record, h), "explanation": tip.explanation or None}
                | {"partition": r.partition, "scorecard": h.scorecard if h else None}
                | {"risk": tip.risk, "risk_explanation": tip.risk_explanation}
            )
        return len(self._health) == len(self._pending.dirty)

    def rows(self) -> CheckpointRows:
        p = self._pending
        return CheckpointRows(
            epochs=self._epochs,
            offsets=self._offsets,
            health=self._health,
            history=list(p.history.values()),
            seen_keys={k: bytes(v) for k, v in p.seen_keys.items()},
            signals=p.signals,
            profiles={a: body for a, (_, body) in p.profiles.items()},
            clocks=p.clocks,
            watches=self._watches,
        )


class ResidentAccounts:
    def __init__(self, config: ScoringConfig, *, max_resident: int = 20_000) -> None:
        self.config = config
        self.max_resident = max_resident
        self.accounts: dict[str, Resident] = {}  # in order of last touch: the coldest first
        self.profiles: dict[str, AccountProfile] = {}
        self.pending = Pending()
        self._in_flight = Pending()
        self.closes = 0  # day closes decided so far (for measures)
        self.watches = PartitionWatches(config.rules, config.scorecards.thresholds.inactivity_days)
        self.held: dict[str, int] = defaultdict(int)  # signal type -> raises held back by a data problem, so far

    def missing(self, ids: Iterable[str]) -> list[str]:
        return [a for a in dict.fromkeys(ids) if a not in self.accounts]

    def admit(self, loaded: Loaded, ids: Iterable[str], partition_of: Mapping[str, int]) -> None:
        """Make ``ids`` resident from what was read (an account not in the table starts empty)."""
        self.profiles.update(loaded.profiles)
        for a in ids:
            record = loaded.records.get(a) or AccountRecord()
            partition = partition_of.get(a, loaded.partitions.get(a))
            self.accounts[a] = Resident(record, partition, loaded.seen.get(a, {}))

    def set_profile(self, profile: AccountProfile, accounts_partition: int) -> None:
        self.profiles[profile.account_id] = profile
        self.pending.profiles[profile.account_id] = (accounts_partition, profile.model_dump(mode="json"))

    def fold(self, events: list[tuple[ScorerEvent, int]]) -> FoldCounts:
        """Deduplicate and evaluate a batch (every account resident), in stream order per account."""
        batch = {a: self._touch(a, p) for a, p in {e.account_id: p for e, p in events}.items()}
        known = {a: r.seen for a, r in batch.items()}
        watermarks = {a: wm for a, r in batch.items() if (wm := r.record.state.watermark) is not None}
        to_fold, added = dedup.first_sightings((e for e, _ in events), known, watermarks, self.config.rules)
        for key, ids in added.items():
            self.pending.seen_keys[key].extend(ids)
        self.pending.signals += self.watches.observe(to_fold, self._partition_of, self._state_of)
        self.pending.watches.update(r.partition for r in batch.values() if r.partition is not None)
        by_account: dict[str, list[ScorerEvent]] = defaultdict(list)
        for e in to_fold:
            by_account[e.account_id].append(e)
        late = 0
        for a, evs in by_account.items():
            r = batch[a]
            hold = self.watches.hold_for(r.partition)
            ev = evaluate_account(a, r.record, evs, self.profiles.get(a), self.config, hold=hold)
            late += ev.late
            self._note(a, ev)
        clocks = self.pending.clocks
        for e, p in events:
            at = e.occurred_at
            if p not in clocks or at > clocks[p]:
                clocks[p] = at
        self.pending.events += len(events)
        return FoldCounts(len(events) - len(to_fold), late, len(to_fold) - late)

    def still_open(self, due: Mapping[str, int], clocks: Mapping[int, datetime]) -> dict[str, int]:
        """Of the accounts the table says have a day before their partition's clock to close (``due``: account ->
        partition), those memory agrees about: a resident account's record is newer than its row."""
        out = {}
        for a, p in due.items():
            r = self.accounts.get(a)
            closed = r.record.closed_on if r is not None else None
            if closed is None or closed.toordinal() < clocks[p].toordinal() - 1:
                out[a] = p
        return out

    def sweep(self, due: Mapping[str, datetime]) -> None:
        """Close the days of idle resident accounts up to their partition's clock."""
        for a, clock in due.items():
            r = self._touch(a, None)
            if r.partition is not None:
                self.pending.signals += self.watches.advance(r.partition, clock.toordinal())
                self.pending.watches.add(r.partition)
            hold = self.watches.hold_for(r.partition)
            self._note(a, evaluate_account(a, r.record, (), self.profiles.get(a), self.config, clock, hold))

    def _partition_of(self, account_id: str) -> int | None:
        return self.accounts[account_id].partition

    def _state_of(self, account_id: str) -> AccountState:
        return self.accounts[account_id].record.state

    def _touch(self, account_id: str, partition: int | None) -> Resident:
        r = self.accounts.pop(account_id)
        self.accounts[account_id] = r  # to the warm end
        if partition is not None:
            r.partition = partition
        return r

    def _note(self, account_id: str, ev: Evaluation) -> None:
        self.closes += len(ev.closes)
        for c in ev.closes:
            for t in c.held:
                self.held[t.value] += 1
        risk = next((c.risk for c in reversed(ev.closes) if c.risk), None)
        tip = _Tip(ev.tip, risk.probability if risk else None, risk)
        old = self.pending.dirty.get(account_id)
        self.pending.dirty[account_id] = _merge_tip(old, tip) if old else tip
        history = self.pending.history
        for c in ev.closes:
            row = {"account_id": account_id, "day": c.day, "score": c.health.score, "band": c.health.band}
            if c.risk:
                row["risk"] = c.risk.probability
            _put_history(history, (account_id, c.day), row)
        self.pending.signals.extend(ev.signals)  # the tip's history row is written with its health row

    def take_rows(self, epochs: dict[TopicPartition, int], offsets: dict[TopicPartition, int]) -> CheckpointRows:
        """Encode the pending writes (and start a fresh ``Pending``): rows of the records as they are now."""
        taking = self.start_taking_rows(epochs, offsets)
        while not taking.step():
            pass
        return taking.rows()

    def start_taking_rows(self, epochs: dict[TopicPartition, int], offsets: dict[TopicPartition, int]) -> RowTaking:
        """``take_rows`` a slice at a time (see ``RowTaking``): what is pending now is what it takes."""
        p, self.pending = self.pending, Pending()
        self._in_flight = p
        return RowTaking(self.accounts, p, epochs, offsets, self.watches.stored(p.watches))

    def restore(self) -> None:
        """The checkpoint of ``take_rows`` failed: what it held is pending again, under what came since."""
        self.pending = self._in_flight.under(self.pending)
        self._in_flight = Pending()

    def checkpointed(self) -> None:
        self._in_flight = Pending()

    @property
    def dirty(self) -> bool:
        p = self.pending
        return bool(p.dirty or p.history or p.seen_keys or p.signals or p.profiles or p.clocks or p.watches)

    def drop_partitions(self, events_partitions: Collection[int], accounts_partitions: Collection[int]) -> None:
        """Forget the partitions' accounts and their unwritten changes (revoked after a checkpoint, or lost)."""
        gone = {a for a, r in self.accounts.items() if r.partition in events_partitions}
        for a in gone:
            del self.accounts[a]
        for p in (self.pending, self._in_flight):  # a checkpoint in flight that fails must not bring them back
            p.forget(gone, events_partitions, accounts_partitions)
        self.watches.drop(events_partitions)

    def evict(self) -> int:
        """Drop the coldest clean accounts beyond the budget (down to 90% of it); returns how many went."""
        over = len(self.accounts) - self.max_resident
        if over <= 0:
            return 0
        target = over + self.max_resident // 10
        dirty = self.pending.dirty
        cold: list[str] = []
        for a in self.accounts:
            if len(cold) >= target:
                break
            if a not in dirty:
                cold.append(a)
        for a in cold:
            del self.accounts[a]
        return len(cold)

    def forget_old_keys(self) -> None:
        """Drop event keys of days that can no longer count (the watermark minus the grace period)."""
        grace = timedelta(days=self.config.rules.grace_days)
        for r in self.accounts.values():
            wm = r.record.state.watermark
            if wm is not None and r.seen:
                oldest = wm.date() - grace
                if min(r.seen.values()) < oldest:
                    r.seen = {k: d for k, d in r.seen.items() if d >= oldest}
