"""Resident accounts between checkpoints: folding in memory with checkpoints, evictions and re-reads anywhere
gives the state and signals of one fold; a failed checkpoint loses nothing; lost partitions leave nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from services.scorer import resident as resident_module
from services.scorer.codec import state_to_json
from services.scorer.decode import ScorerEvent, decode_scorer_event
from services.scorer.dedup import keys_of
from services.scorer.evaluate import ScoringConfig
from services.scorer.record_rows import record_from_row
from services.scorer.resident import CheckpointRows, Loaded, ResidentAccounts
from services.scorer.windows import WindowRules
from tests.support.scorer_stream import account_events

CONFIG = ScoringConfig(rules=WindowRules(key_features=frozenset({"reports"})))


def _stream(accounts: int = 12) -> list[tuple[ScorerEvent, int]]:
    per = {f"acct-{a:02d}": account_events(f"acct-{a:02d}", days=30) for a in range(accounts)}
    longest = max(len(v) for v in per.values())
    mixed = [evs[i] for i in range(longest) for evs in per.values() if i < len(evs)]  # accounts interleaved
    mixed += mixed[::13]  # retries
    return [(decode_scorer_event(json.dumps(e).encode()), int(e["account_id"][-2:]) % 3) for e in mixed]


class _Table:
    """What PostgreSQL would hold after each checkpoint."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, dict[bytes, Any]] = {}
        self.signals: list[str] = []

    def write(self, rows: CheckpointRows) -> None:
        for row in rows.health:
            stored = json.loads(json.dumps(row, default=str))
            stored["as_of"] = datetime.fromisoformat(row["as_of"].isoformat()) if row["as_of"] else None
            stored["closed_on"] = row["closed_on"]
            self.rows[row["account_id"]] = stored
        for (account, day), ids in rows.seen_keys.items():
            self.seen.setdefault(account, {}).update(dict.fromkeys(keys_of(ids), day))
        self.signals += [s.signal_id for s in rows.signals]

    def load(self, ids: list[str]) -> Loaded:
        found = [a for a in ids if a in self.rows]
        return Loaded(
            records={a: record_from_row(SimpleNamespace(**self.rows[a])) for a in found},
            partitions={a: self.rows[a]["partition"] for a in found},
            seen={a: dict(self.seen.get(a, {})) for a in found},
        )


def _fold_all(events: list[tuple[ScorerEvent, int]], *, batch: int, every: int, budget: int) -> tuple[Any, ...]:
    table, resident = _Table(), ResidentAccounts(CONFIG, max_resident=budget)
    for n, at in enumerate(range(0, len(events), batch)):
        part = events[at : at + batch]
        missing = resident.missing(e.account_id for e, _ in part)
        resident.admit(table.load(missing), missing, {e.account_id: p for e, p in part})
        resident.fold(part)
        if n % every == every - 1 or at + batch >= len(events):
            table.write(resident.take_rows({}, {}))
            resident.checkpointed()
            resident.evict()
    states = {a: r["state"] for a, r in table.rows.items()}
    return states, table.signals, len(resident.accounts)


def test_checkpoints_and_evictions_anywhere_give_the_state_and_signals_of_one_fold() -> None:
    events = _stream()
    whole_states, whole_signals, _ = _fold_all(events, batch=len(events), every=1, budget=10**6)
    assert whole_signals, "the stream must raise signals for the comparison to mean something"
    for batch, every, budget in [(50, 1, 100), (37, 3, 5), (11, 7, 2), (400, 2, 3)]:
        states, signals, resident = _fold_all(events, batch=batch, every=every, budget=budget)
        assert states == whole_states, (batch, every, budget)
        assert sorted(signals) == sorted(whole_signals), (batch, every, budget)
        assert resident <= budget, "a clean account beyond the budget must go"


def test_a_failed_checkpoint_is_pending_again_under_what_came_since() -> None:
    events = _stream(4)
    resident = ResidentAccounts(CONFIG)
    resident.admit(Loaded(), resident.missing(e.account_id for e, _ in events), {})
    cut = len(events) // 2
    resident.fold(events[:cut])
    failed = resident.take_rows({}, {})
    resident.fold(events[cut:])
    resident.restore()  # the write of ``failed`` did not commit
    retried = resident.take_rows({}, {})

    reference = ResidentAccounts(CONFIG)
    reference.admit(Loaded(), reference.missing(e.account_id for e, _ in events), {})
    reference.fold(events[:cut])
    reference.fold(events[cut:])
    expected = reference.take_rows({}, {})
    assert [s.signal_id for s in retried.signals] == [s.signal_id for s in expected.signals]
    assert retried.seen_keys == expected.seen_keys and len(retried.seen_keys) > len(failed.seen_keys)
    assert sorted(retried.history, key=str) == sorted(expected.history, key=str)
    assert retried.health == expected.health


def test_lost_partitions_leave_nothing_behind_and_dirty_accounts_are_never_evicted() -> None:
    events = _stream(6)
    resident = ResidentAccounts(CONFIG, max_resident=1)
    resident.admit(Loaded(), resident.missing(e.account_id for e, _ in events), {e.account_id: p for e, p in events})
    resident.fold(events)
    assert resident.evict() == 0, "every account is dirty: the caller checkpoints first"
    resident.drop_partitions({0}, set())
    kept = {a for a, r in resident.accounts.items()}
    assert kept and all(resident.accounts[a].partition != 0 for a in kept)
    rows = resident.take_rows({}, {})
    assert {r["account_id"] for r in rows.health} == kept
    assert {s.account_id for s in rows.signals} <= kept
    assert {a for a, _ in rows.seen_keys} == kept
    assert set(rows.clocks) == {1, 2}
    assert all(state_to_json(resident.accounts[a].record.state)["v"] >= 2 for a in kept)


def test_a_sweep_while_events_flow_trusts_memory_over_the_table() -> None:
    """The table lags memory by up to one checkpoint: of the accounts it calls stale, a resident one whose record
    has closed the days before its partition's clock is left alone; one not resident, or still behind, is swept."""
    events = _stream(3)
    resident = ResidentAccounts(CONFIG, max_resident=10)
    resident.admit(Loaded(), resident.missing(e.account_id for e, _ in events), {e.account_id: p for e, p in events})
    resident.fold(events)
    (a, r), (b, q) = list(resident.accounts.items())[:2]
    closed_a, closed_b = r.record.closed_on, q.record.closed_on
    assert closed_a is not None and closed_b is not None
    clock_a = datetime.combine(closed_a + timedelta(days=1), time(12), tzinfo=UTC)  # nothing left to close
    clock_b = datetime.combine(closed_b + timedelta(days=3), time(12), tzinfo=UTC)  # two days to close
    clocks = {0: clock_a, 1: clock_b}
    due = {a: 0, b: 1, "not-resident": 0}
    assert resident.still_open(due, clocks) == {b: 1, "not-resident": 0}


def test_partitions_dropped_while_a_checkpoint_is_in_flight_stay_dropped_if_it_fails() -> None:
    events = _stream(6)
    resident = ResidentAccounts(CONFIG, max_resident=100)
    resident.admit(Loaded(), resident.missing(e.account_id for e, _ in events), {e.account_id: p for e, p in events})
    resident.fold(events)
    resident.take_rows({}, {})  # in flight
    resident.drop_partitions({0}, set())
    resident.restore()  # its transaction failed
    rows = resident.take_rows({}, {})
    kept = set(resident.accounts)
    assert kept and {r["account_id"] for r in rows.health} == kept
    assert {a for a, _ in rows.seen_keys} == kept and 0 not in rows.clocks


def test_rows_taken_a_slice_at_a_time_are_the_rows_taken_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _stream(12)
    whole, sliced = ResidentAccounts(CONFIG), ResidentAccounts(CONFIG)
    for resident in (whole, sliced):
        resident.admit(Loaded(), resident.missing(e.account_id for e, _ in events), {})
        resident.fold(events)
    monkeypatch.setattr(resident_module, "ROWS_SLICE", 5)
    taking = sliced.start_taking_rows({}, {})
    assert [taking.step() for _ in range(3)] == [False, False, True], "12 accounts: 5, 10, then the last 2"
    assert not sliced.dirty, "what comes while the rows are taken goes to the next checkpoint"
    rows, expected = taking.rows(), whole.take_rows({}, {})
    assert rows.health == expected.health and len(rows.health) == 12
    assert sorted(rows.history, key=str) == sorted(expected.history, key=str)
    assert rows.seen_keys == expected.seen_keys
