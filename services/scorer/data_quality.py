"""Telling a data problem from a customer problem. Pure; decided per closed day, like every signal.

Two symptoms of a problem upstream of Churnwatch rather than at the customer:
- **A silent source.** A source (a product integration, an SDK, an API key) that usually sends on this weekday sent
  (almost) nothing on a day on which the other sources went on sending. Its usual count is learned per source: the
  median of its counts on the same weekday in the weeks before (so a B2B product's quiet weekend is usual), and it
  is watched only once it has that much history and usually sends enough for silence to mean something.
- **A day on which far more accounts go quiet than ever do.** The share of active accounts whose inactivity
  condition starts on one day, against the median share of the days before: one broken release can stop every
  source of one product at once, which no per-source rule sees if that product was the only source.

An account that sends from a source that was silent on any day of the usage window (its drop may be that
source's silence, not the customer's), or that went quiet on a spike day, has its inactivity and usage-drop
signals held back (``PartitionWatch.holds``): they are not raised while the hold lasts, and since the detectors
only raise on a change, a condition that still holds once the hold ends is raised then. A real churner going
quiet alone is never held: its sources go on sending for everyone else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median

from shared.signals import SignalType

HELD_BY_DATA_PROBLEMS = frozenset({SignalType.INACTIVITY, SignalType.USAGE_DROP})
WEEK = 7


@dataclass(frozen=True)
class DataQualityRules:
    baseline_weeks: int = 4  # the same weekday in this many weeks before sets a source's usual count
    min_usual_events: int = 20  # a source usually sending fewer events that weekday is not watched
    silent_share: float = 0.1  # a watched source sending below this share of its usual count is silent that day
    spike_factor: float = 5.0  # accounts going quiet on a day, against the usual day's share...
    spike_min_share: float = 0.05  # ...and at least this share of the active accounts
    spike_min_accounts: int = 10  # a spike needs at least this many accounts going quiet
    spike_baseline_days: int = 28


DEFAULT_RULES = DataQualityRules()


@dataclass
class SourceDays:
    """One source's event counts per day (day numbers as the scorer's state counts them) in one partition."""

    first_day: int
    counts: dict[int, int] = field(default_factory=dict)

    def add(self, day: int, events: int = 1) -> None:
        self.counts[day] = self.counts.get(day, 0) + events
        self.first_day = min(self.first_day, day)

    def prune(self, before: int) -> None:
        for day in [d for d in self.counts if d < before]:
            del self.counts[day]


def usual_count(source: SourceDays, day: int, rules: DataQualityRules = DEFAULT_RULES) -> float | None:
    """The median count on the same weekday of the ``baseline_weeks`` weeks before ``day``; None without that much
    history (a source that started sending recently has no usual yet)."""
    earlier = [day - WEEK * k for k in range(1, rules.baseline_weeks + 1)]
    if earlier[-1] < source.first_day:
        return None
    return float(median(source.counts.get(d, 0) for d in earlier))


def is_silent(source: SourceDays, day: int, rules: DataQualityRules = DEFAULT_RULES) -> bool:
    usual = usual_count(source, day, rules)
    if usual is None or usual < rules.min_usual_events:
        return False
    return source.counts.get(day, 0) < rules.silent_share * usual


def silent_sources(
    sources: Mapping[str, SourceDays], day: int, rules: DataQualityRules = DEFAULT_RULES
) -> frozenset[str]:
    """The watched sources silent on ``day``. None are, when every watched source is: with nothing arriving at all
    the day would not have closed by events, and a whole-product outage is the spike rule's to see."""
    watched = [name for name, s in sources.items() if (u := usual_count(s, day, rules)) and u >= rules.min_usual_events]
    silent = frozenset(name for name in watched if is_silent(sources[name], day, rules))
    return silent if len(silent) < len(watched) else frozenset()


@dataclass(frozen=True)
class QuietDay:
    """How many of the active accounts went quiet (their inactivity condition started) on one day."""

    day: int
    went_quiet: int
    active: int

    @property
    def share(self) -> float:
        return self.went_quiet / self.active if self.active else 0.0


def is_spike(today: QuietDay, before: Sequence[QuietDay], rules: DataQualityRules = DEFAULT_RULES) -> bool:
    """Far more accounts went quiet today than on the usual day of the ``spike_baseline_days`` before."""
    if today.went_quiet < rules.spike_min_accounts or today.share < rules.spike_min_share:
        return False
    window = [q.share for q in before if today.day - rules.spike_baseline_days <= q.day < today.day]
    usual = median(window) if window else 0.0
    return today.share > rules.spike_factor * usual


@dataclass(frozen=True)
class DataQualityDay:
    """One closed day of a partition, as the data-quality rules read it."""

    day: int
    silent: frozenset[str]
    spike: QuietDay | None  # the quiet-day spike, when the day was one


@dataclass
class PartitionWatch:
    """What one partition knows about its sources and its accounts' last active days, folded event by event.

    ``advance`` is called when the partition's clock passes into a later day, before any account closes the days
    it passed: a day's verdict is then complete (its events are in), and every account closing it reads the same.
    """

    rules: DataQualityRules = DEFAULT_RULES
    inactivity_days: int = 5  # the inactivity detector's threshold: quiet for longer than this
    sources: dict[str, SourceDays] = field(default_factory=dict)
    last_active: dict[str, int] = field(default_factory=dict)  # account -> its last day with usage
    active_on: dict[int, int] = field(default_factory=dict)  # day -> accounts whose last active day it is
    quiet_days: list[QuietDay] = field(default_factory=list)
    verdicts: dict[int, DataQualityDay] = field(default_factory=dict)
    closed_through: int | None = None

    def observe(self, account_id: str, source: str | None, day: int, usage: bool) -> None:
        if source is not None:
            self.sources.setdefault(source, SourceDays(first_day=day)).add(day)
        if usage and day > self.last_active.get(account_id, day - 1):
            before = self.last_active.get(account_id)
            if before is not None:
                self.active_on[before] -= 1
            self.last_active[account_id] = day
            self.active_on[day] = self.active_on.get(day, 0) + 1

    def advance(self, to_day: int) -> list[DataQualityDay]:
        """Close every day before ``to_day`` not closed yet; returns their verdicts (the first call closes none:
        a partition's first day is where its history starts)."""
        if self.closed_through is None:
            self.closed_through = to_day - 1
            return []
        closed = [self._close(d) for d in range(self.closed_through + 1, to_day)]
        if closed:
            self.closed_through = to_day - 1
            self._prune(to_day)
        return closed

    def holds(self, account_id: str, account_sources: Iterable[str], day: int, window_days: int) -> bool:
        """Whether the account's inactivity and usage-drop signals wait at its close of ``day``: a source it sends
        from was silent on a day of the last ``window_days`` (its drop may be that source's), or it went quiet on a
        spike day of that window. A real churner going quiet alone is never held: its sources go on sending."""
        recent = [v for d in range(day - window_days + 1, day + 1) if (v := self.verdicts.get(d)) is not None]
        silent = frozenset().union(*(v.silent for v in recent))
        if not silent.isdisjoint(account_sources):
            return True
        quiet_since = self.last_active.get(account_id)
        return quiet_since is not None and any(
            v.spike is not None and quiet_since == v.day - self.inactivity_days - 1 for v in recent
        )

    def _close(self, day: int) -> DataQualityDay:
        gone_quiet = self.active_on.get(day - self.inactivity_days - 1, 0)
        active = sum(n for d, n in self.active_on.items() if d >= day - self.inactivity_days - 1)
        quiet = QuietDay(day, gone_quiet, active)
        spike = quiet if is_spike(quiet, self.quiet_days, self.rules) else None
        self.quiet_days.append(quiet)
        verdict = DataQualityDay(day, silent_sources(self.sources, day, self.rules), spike)
        self.verdicts[day] = verdict
        return verdict

    def _prune(self, to_day: int) -> None:
        keep_from = to_day - WEEK * (self.rules.baseline_weeks + 1)
        for s in self.sources.values():
            s.prune(keep_from)
        self.quiet_days = [q for q in self.quiet_days if q.day >= to_day - self.rules.spike_baseline_days - 1]
        self.verdicts = {d: v for d, v in self.verdicts.items() if d >= to_day - self.rules.spike_baseline_days}
