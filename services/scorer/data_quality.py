"""Telling a data problem from a customer problem. Pure; decided per closed day, like every signal.

Two symptoms of a problem upstream of Churnwatch rather than at the customer:
- **A silent source.** A source (a product integration, an SDK, an API key) that usually sends on this weekday sent
  (almost) nothing on a day on which the other sources went on sending. Its usual count is learned per source: the
  median of its counts on the same weekday in the weeks before (so a B2B product's quiet weekend is usual), and it
  is watched only once it has that much history and usually sends enough for silence to mean something.
- **A day on which far more accounts go quiet than ever do.** The share of active accounts whose inactivity
  condition starts on one day, against the median share of the days before: one broken release can stop every
  source of one product at once, which no per-source rule sees if that product was the only source.

An account that sends from a source that was silent (its drop may be that source's silence, not the
customer's), or that went quiet on a spike day, has the raises a gap in its data can cause held back for the
window they read (``hold_days``: inactivity, usage drop, the score and what reads it, the churn risk wait out the
current window; expansion the baseline too). Held raises are not raised late: the detectors raise on a change,
so a condition that still holds once the hold ends is raised then. A real churner going quiet alone is never
held: its sources go on sending for everyone else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from statistics import median

from services.scorer.detectors import ActiveSignal, Condition
from services.scorer.windows import WindowRules
from shared.signals import Audience, RiskSignal, Severity, SignalType, signal_id_for

WEEK = 7
# Signals a gap in the data cannot cause: tickets and feedback are not usage (and a data problem is not held).
NEVER_HELD = frozenset({SignalType.TICKET_SPIKE, SignalType.ESCALATION, SignalType.DETRACTOR, SignalType.DATA_QUALITY})


def hold_days(kind: SignalType, rules: WindowRules) -> int | None:
    """How many days after a data problem touched an account a raise of ``kind`` waits (None: never held).
    Whatever reads the current window's usage (inactivity, usage drop, the score and the signals that read it,
    the churn-risk estimate) waits out that window; expansion compares it with the baseline before it, which a
    gap lowers, so it waits out both."""
    if kind in NEVER_HELD:
        return None
    return rules.current_days + rules.baseline_days if kind is SignalType.EXPANSION else rules.current_days


def longest_hold(rules: WindowRules) -> int:
    return rules.current_days + rules.baseline_days


def hold_back(
    now: dict[SignalType, Condition],
    active: Mapping[SignalType, ActiveSignal],
    problem_age: Callable[[], int | None],
    rules: WindowRules,
) -> tuple[dict[SignalType, Condition], tuple[SignalType, ...]]:
    """``now`` without the raises and escalations a data problem may cause, and the kinds held: a new condition
    of a held kind is left out, a more severe one keeps the severity already raised. ``problem_age`` (days since
    a data problem last touched the account, None: none) is asked only when something could be held. Runs at
    every day close: ``now`` itself comes back when nothing is held."""
    rising = [
        t
        for t, c in now.items()
        if t not in NEVER_HELD and ((a := active.get(t)) is None or c.severity.rank > a.severity.rank)
    ]
    if not rising:
        return now, ()
    age = problem_age()
    if age is None:
        return now, ()
    held = tuple(t for t in rising if age < (hold_days(t, rules) or 0))
    if not held:
        return now, ()
    out = dict(now)
    for t in held:
        raised = active.get(t)
        if raised is None:
            del out[t]
        else:
            out[t] = replace(out[t], severity=raised.severity)
    return out, held


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


@dataclass(frozen=True)
class DataQualityChange:
    """A data problem that started or ended at a day's close: a silent source, or a quiet-day spike."""

    subject: str  # "source:<name>" or QUIET_SPIKE: the alerter's "account" of the notice
    day: int
    recovered: bool
    evidence: dict[str, float]


QUIET_SPIKE = "accounts:went-quiet"
SOURCE_PREFIX = "source:"


@dataclass
class PartitionWatch:
    """What one partition knows about its sources and its accounts' last active days, folded event by event.

    ``advance`` is called when the partition's clock passes into a later day, before any account closes the days
    it passed: a day's verdict is then complete (its events are in), and every account closing it reads the same.
    Stored with each checkpoint (``to_json``), so a restart reads on from the same point.
    """

    rules: DataQualityRules = DEFAULT_RULES
    inactivity_days: int = 5  # the inactivity detector's threshold: quiet for longer than this
    sources: dict[str, SourceDays] = field(default_factory=dict)
    active_on: dict[int, int] = field(default_factory=dict)  # day -> accounts whose last active day it is
    quiet_days: list[QuietDay] = field(default_factory=list)
    verdicts: dict[int, DataQualityDay] = field(default_factory=dict)
    closed_through: int | None = None
    lookback_days: int = 35  # verdicts kept for holds: the longest hold window (``longest_hold``)
    raised: dict[str, int] = field(default_factory=dict)  # the data problems open after the last closed day -> since
    released: frozenset[tuple[str, int]] = frozenset()  # (problem, its first day) a person released: not stored here

    @property
    def day_in_progress(self) -> int | None:
        return None if self.closed_through is None else self.closed_through + 1

    def observe(self, source: str | None, day: int) -> None:
        if source is not None:
            self.sources.setdefault(source, SourceDays(first_day=day)).add(day)

    def moved_active(self, before: int | None, after: int) -> None:
        """An account's last day with usage moved from ``before`` (None: it had none) to the later ``after``."""
        if before is not None:
            left = self.active_on.get(before, 0) - 1
            if left > 0:
                self.active_on[before] = left
            else:
                self.active_on.pop(before, None)
        self.active_on[after] = self.active_on.get(after, 0) + 1

    def advance(self, to_day: int) -> list[DataQualityChange]:
        """Close every day before ``to_day`` not closed yet; returns the data problems that started or ended on
        them (the first call closes none: a partition's first day is where its history starts)."""
        if self.closed_through is None:
            self.closed_through = to_day - 1
            return []
        changes: list[DataQualityChange] = []
        for d in range(self.closed_through + 1, to_day):
            changes += self._changes(self._close(d))
        if to_day - 1 > self.closed_through:
            self.closed_through = to_day - 1
            self._prune(to_day)
        return changes

    def problem_age(
        self, account_sources: Iterable[str], last_active: int | None, day: int, lookback: int
    ) -> int | None:
        """Days since a data problem last touched an account at its close of ``day`` (0: that day), looking back
        ``lookback`` days; None: none did. A problem touches an account when a source it sends from was silent
        (its drop may be that source's), or when it went quiet (last active on ``last_active``) on a spike day.
        A real churner going quiet alone is never touched: its sources go on sending for everyone else."""
        sources = frozenset(account_sources)
        quiet_on = None if last_active is None else last_active + self.inactivity_days + 1
        for d in range(day, day - lookback, -1):
            v = self.verdicts.get(d)
            if v is None:
                continue
            if any(not self._released(SOURCE_PREFIX + s, d) for s in v.silent & sources):
                return day - d
            if v.spike is not None and d == quiet_on and (QUIET_SPIKE, d) not in self.released:
                return day - d
        return None

    def _released(self, subject: str, day: int) -> bool:
        """Whether the silence of ``subject`` on ``day`` belongs to a problem a person released: the run of
        silent days it is part of started on a day named in ``released``."""
        if not self.released:
            return False
        name = subject.removeprefix(SOURCE_PREFIX)
        start = day
        while (v := self.verdicts.get(start - 1)) is not None and name in v.silent:
            start -= 1
        return (subject, start) in self.released

    def _close(self, day: int) -> DataQualityDay:
        gone_quiet = self.active_on.get(day - self.inactivity_days - 1, 0)
        active = sum(n for d, n in self.active_on.items() if d >= day - self.inactivity_days - 1)
        quiet = QuietDay(day, gone_quiet, active)
        spike = quiet if is_spike(quiet, self.quiet_days, self.rules) else None
        self.quiet_days.append(quiet)
        verdict = DataQualityDay(day, silent_sources(self.sources, day, self.rules), spike)
        self.verdicts[day] = verdict
        return verdict

    def _changes(self, verdict: DataQualityDay) -> list[DataQualityChange]:
        now: dict[str, dict[str, float]] = {}
        for name in sorted(verdict.silent):
            usual = usual_count(self.sources[name], verdict.day, self.rules) or 0.0
            sent = self.sources[name].counts.get(verdict.day, 0)
            now[SOURCE_PREFIX + name] = {"events": float(sent), "usual_events": usual}
        if (spike := verdict.spike) is not None:
            now[QUIET_SPIKE] = {"accounts_went_quiet": float(spike.went_quiet), "active_accounts": float(spike.active)}
        started = [DataQualityChange(s, verdict.day, False, e) for s, e in now.items() if s not in self.raised]
        ended = [DataQualityChange(s, verdict.day, True, {}) for s in sorted(self.raised.keys() - now.keys())]
        self.raised = {s: self.raised.get(s, verdict.day) for s in now}
        return started + ended

    def _prune(self, to_day: int) -> None:
        keep_from = to_day - WEEK * (self.rules.baseline_weeks + 1)
        for s in self.sources.values():
            s.prune(keep_from)
        self.sources = {n: s for n, s in self.sources.items() if s.counts}
        self.active_on = {d: n for d, n in self.active_on.items() if d >= to_day - self.rules.spike_baseline_days}
        self.quiet_days = [q for q in self.quiet_days if q.day >= to_day - self.rules.spike_baseline_days - 1]
        keep = max(self.rules.spike_baseline_days, self.lookback_days)
        self.verdicts = {d: v for d, v in self.verdicts.items() if d >= to_day - keep}


def data_quality_signal(change: DataQualityChange) -> RiskSignal:
    """The operators' notice of a data problem starting or ending (one id per problem and day, so the
    partitions that each see it raise one notice between them)."""
    at = datetime.combine(date.fromordinal(change.day), time.max, tzinfo=UTC)
    on = at.date().isoformat()
    if change.subject == QUIET_SPIKE:
        what = f"far more accounts went quiet on {on} than on a usual day"
    else:
        what = f"source {change.subject.removeprefix(SOURCE_PREFIX)!r} went silent on {on}"
    if change.recovered:
        explanation = f"Over: {what.replace(' on ' + on, '')} - it is back to normal on {on}."
    else:
        e = change.evidence
        counts = f" ({e['events']:.0f} events against a usual {e['usual_events']:.0f})" if "events" in e else ""
        explanation = (
            f"Data problem: {what}{counts}. Inactivity and usage-drop alerts of the accounts it touches are held"
            " back until it ends."
        )
    return RiskSignal(
        signal_id=signal_id_for(change.subject, SignalType.DATA_QUALITY, at, "recovered" if change.recovered else ""),
        account_id=change.subject,
        signal_type=SignalType.DATA_QUALITY,
        severity=Severity.INFO if change.recovered else Severity.WARNING,
        audience=Audience.OPS,
        recovered=change.recovered,
        explanation=explanation,
        evidence=change.evidence,
        occurred_at=at,
    )
