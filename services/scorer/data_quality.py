"""Telling a data problem from a customer problem. Pure; decided per closed day, like every signal.

Two symptoms of a problem upstream of Churnwatch rather than at the customer:
- **A silent source.** A source (a product integration, an SDK, an API key) that usually sends on this weekday sent
  (almost) nothing on a day on which the other sources went on sending. Its usual count is learned per source: the
  median of its counts on the same weekday in the weeks before (so a B2B product's quiet weekend is usual), and it
  is watched only once it has that much history and usually sends enough for silence to mean something.
- **A day on which far more accounts go quiet than ever do.** The share of active accounts whose inactivity
  condition starts on one day, against the median share of the days before: one broken release can stop every
  source of one product at once, which no per-source rule sees if that product was the only source.

An account that usually sends from a source that was silent on any day of the usage window (its drop may be that
source's silence, not the customer's), or which goes quiet on a spike day, has its inactivity and usage-drop
signals held back (``held_back``): they are not raised while the hold lasts, and since the detectors only raise on
a change, a condition that still holds once the hold ends is raised then. A real churner going quiet alone is
never held: its sources go on sending for everyone else.
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


def held_back(account_sources: Iterable[str], silent_lately: frozenset[str], spike_day: bool) -> bool:
    """Whether an account's inactivity and usage-drop signals wait: ``silent_lately`` holds the sources silent on
    any day of the usage window."""
    return spike_day or not silent_lately.isdisjoint(account_sources)
