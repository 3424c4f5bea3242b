"""The data-quality watches of this instance's partitions, fed by the resident accounts' fold. Pure: no I/O.

One ``PartitionWatch`` per owned events partition (services/scorer/data_quality.py decides what is a data
problem). Counted events are observed in stream order; a partition's first event of a later day takes the
verdicts of the days before it, before any account of the partition closes them, so every account reads the
same verdicts however the stream was cut into batches. The notices of data problems starting and ending are
returned as signals (``advance``), the hold each account's day close consults as a ``DataHold`` (``hold_for``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from services.scorer.data_quality import PartitionWatch, data_quality_signal, longest_hold
from services.scorer.decode import ScorerEvent
from services.scorer.evaluate import DataHold
from services.scorer.watch_format import watch_from_json, watch_to_json
from services.scorer.windows import AccountState, WindowRules
from shared.signals import RiskSignal


def last_active_day(state: AccountState) -> int | None:
    """The account's last day with usage, as a day number (``date.toordinal``)."""
    return state.last_activity_at.toordinal() if state.last_activity_at else None


class PartitionWatches:
    def __init__(self, rules: WindowRules, inactivity_days: int) -> None:
        self._rules = rules
        self._inactivity_days = inactivity_days
        self.by_partition: dict[int, PartitionWatch] = {}
        self.released: frozenset[tuple[str, int]] = frozenset()  # (problem, first day) a person released

    def of(self, partition: int) -> PartitionWatch:
        found = self.by_partition.get(partition)
        if found is None:
            found = self.by_partition[partition] = self._fresh()
        return found

    def _fresh(self) -> PartitionWatch:
        lookback = longest_hold(self._rules)
        return PartitionWatch(inactivity_days=self._inactivity_days, lookback_days=lookback, released=self.released)

    def load(self, stored: Mapping[int, dict[str, Any]]) -> None:
        """Watches read from their checkpointed rows (a newly assigned partition's)."""
        for p, body in stored.items():
            self.by_partition[p] = watch_from_json(body, self._fresh())

    def observe(
        self,
        events: Iterable[ScorerEvent],
        partition_of: Callable[[str], int | None],
        state_of: Callable[[str], AccountState],
    ) -> list[RiskSignal]:
        """Fold counted events, in stream order, into their partitions' watches; returns the notices of data
        problems that started or ended on the days this closed."""
        notices: list[RiskSignal] = []
        last_active: dict[str, int | None] = {}
        for e in events:
            a, day = e.account_id, e.occurred_at.toordinal()
            p = partition_of(a)
            if p is None:
                continue
            notices += self.advance(p, day)
            w = self.by_partition[p]
            w.observe(e.source, day)
            if e.kind == "usage" and e.action != "seats_changed":
                before = last_active[a] if a in last_active else last_active_day(state_of(a))
                if before is None or day > before:
                    w.moved_active(before, day)
                    last_active[a] = day
        return notices

    def advance(self, partition: int, day: int) -> list[RiskSignal]:
        """Take the verdicts of the partition's days before ``day`` not taken yet."""
        w = self.of(partition)
        started = w.day_in_progress
        if started is not None and day <= started:
            return []
        return [data_quality_signal(c) for c in w.advance(day)]

    def hold_for(self, partition: int | None) -> DataHold | None:
        watch = self.by_partition.get(partition) if partition is not None else None
        if watch is None:
            return None
        rules = self._rules

        lookback = longest_hold(rules)

        def hold(state: AccountState, day: date) -> int | None:
            recent = [n for n, last in state.sources.items() if (day - last).days <= lookback]
            return watch.problem_age(recent, last_active_day(state), day.toordinal(), lookback)

        return hold

    def stored(self, partitions: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The stored form of the partitions' watches, as they are now."""
        return {p: watch_to_json(self.by_partition[p]) for p in partitions if p in self.by_partition}

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.by_partition.pop(p, None)

    def open_problems(self) -> set[str]:
        """The data problems open in these partitions ("source:<name>", or the quiet-day spike)."""
        return set().union(*(w.raised.keys() for w in self.by_partition.values()))

    def release(self, released: frozenset[tuple[str, int]]) -> None:
        """The problems people released (read from PostgreSQL): their holds end at the next day close."""
        self.released = released
        for w in self.by_partition.values():
            w.released = released
