"""One account's step: fold new events into its state, close the days it passed, and score it at its tip. Pure.

Signals are decided at fixed event-time points only, each day's close (its last instant, UTC), never at
whatever batch boundary a poll produced: folding an account's events in stream order, the first event of a
later day (or the scorer's clock, for an account that sends nothing) closes every day before it that is not
closed yet, and each close scores the complete day and decides the signals. So the same events in the same
order give the same signals and signal ids however they are cut into batches or replayed. The *tip* (the
account's latest event time, or the clock) is scored too, for the API and the score history of the day in
progress, but it decides nothing: hysteresis, "the score seven days ago" and the signals read the closes only.

The evaluation time is event time, never wall-clock time. An account whose lifecycle says churned raises no
further signals (its open ones stay as they were).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property

from services.scorer.churn_risk import RiskReading, read_risk, step_churn_risk
from services.scorer.data_quality import hold_back, hold_days
from services.scorer.decode import ScorerEvent
from services.scorer.detectors import ActiveSignal, Transition, build_signal, current_conditions, transitions
from services.scorer.explain import explain
from services.scorer.layouts import HISTORY_LAYOUTS
from services.scorer.metrics import WindowMetrics
from services.scorer.risk_model import RiskModel
from services.scorer.rolling import close_metrics, tip_metrics
from services.scorer.rule_quality import RuleQualityTable
from services.scorer.scorecard import ScorecardSet
from services.scorer.scoring import DEFAULT_SCORECARD, KNOWN_COMPONENTS, HealthScore, score_account
from services.scorer.windows import AccountState, WindowRules, apply_event, churned_by
from shared.accounts import AccountProfile
from shared.signals import RiskSignal, SignalType

HISTORY_LAYOUTS.check_current(["score", *KNOWN_COMPONENTS], ordered=False)
_DAY = timedelta(days=1)
_CHURN_RISK = SignalType.CHURN_RISK
MIN_RISK_OBSERVED_DAYS = 28  # the model was fitted on accounts past their first four weeks
# Days since a data problem upstream last touched the account, at its close of a day (None: none did); what it
# holds back is services/scorer/data_quality.py's to decide.
DataHold = Callable[[AccountState, date], int | None]


@dataclass(frozen=True)
class ScoringConfig:
    rules: WindowRules = field(default_factory=WindowRules)
    scorecards: ScorecardSet = field(default_factory=lambda: ScorecardSet(DEFAULT_SCORECARD))
    rule_quality: RuleQualityTable = field(default_factory=RuleQualityTable)
    risk_model: RiskModel | None = None  # None: no churn-risk estimate (the service always loads one)


@dataclass(frozen=True)
class Snapshot:
    """The score and each component's points at one day's close, to say what changed over seven days."""

    score: float
    points: dict[str, float]


@dataclass
class AccountRecord:
    """Everything the scorer keeps about one account between batches."""

    state: AccountState = field(default_factory=AccountState)
    health: HealthScore | None = None  # at the last day close: hysteresis and "score before" read it
    active: dict[SignalType, ActiveSignal] = field(default_factory=dict)
    as_of: datetime | None = None  # the tip: the latest point the account was scored at
    history: dict[date, Snapshot] = field(default_factory=dict)
    closed_on: date | None = None  # the last day whose close decided the signals
    folds: int = field(default=0, compare=False, repr=False)  # evaluations so far (a ``TipScore`` reads its own)


@dataclass(frozen=True)
class DayClose:
    day: date
    health: HealthScore
    risk: RiskReading | None = None
    held: tuple[SignalType, ...] = ()  # raises held back by a data problem


@dataclass(frozen=True)
class Evaluation:
    record: AccountRecord
    signals: list[RiskSignal]
    as_of: datetime | None  # the tip
    late: int = 0
    closes: tuple[DayClose, ...] = ()
    tip: TipScore | None = None  # the score at the tip: what the API shows, computed where read

    @property
    def explanation(self) -> str:
        """Of the tip."""
        return self.tip.scored().explanation if self.tip else ""

    @property
    def metrics(self) -> WindowMetrics | None:
        return self.tip.scored().metrics if self.tip else None

    @property
    def health(self) -> HealthScore | None:
        return self.tip.scored().health if self.tip else None


class TipScore:
    """The score at an account's tip, computed once first read (most tips are never written: a later batch's
    replaces them), from the record as its evaluation left it: read it before the record is evaluated again."""

    __slots__ = ("_config", "_day", "_folds", "_profile", "_record", "_scored")

    def __init__(self, record: AccountRecord, day: date, profile: AccountProfile | None, config: ScoringConfig) -> None:
        self._record, self._day, self._profile, self._config = record, day, profile, config
        self._folds = record.folds
        self._scored: _Scored | None = None

    @property
    def day(self) -> date:
        return self._day

    def scored(self) -> _Scored:
        if self._scored is None:
            if self._record.folds != self._folds:
                raise RuntimeError("the tip of an evaluation was read after its record was evaluated again")
            self._scored = _score(self._record, self._day, self._profile, self._config, complete=False)
        return self._scored


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def snapshot_before(history: dict[date, Snapshot], day: date) -> Snapshot | None:
    """The latest snapshot on or before ``day`` (the score "seven days ago")."""
    latest = None
    for d in history:
        if d <= day and (latest is None or d > latest):
            latest = d
    return None if latest is None else history[latest]


def _trim(history: dict[date, Snapshot], week_ago: date) -> dict[date, Snapshot]:
    """Keep the last week and the latest snapshot before it (the "seven days ago" of days to come); ``history``
    itself where that is all of it (most closes drop one day or none)."""
    older = [d for d in history if d < week_ago]
    if len(older) <= 1:
        return history
    keep_from = max(older)
    return {d: s for d, s in history.items() if d >= keep_from}


@dataclass(frozen=True)
class _Scored:
    metrics: WindowMetrics
    health: HealthScore
    before: float | None  # the score seven days earlier

    @cached_property
    def explanation(self) -> str:
        """Worded only where it is read (a signal, the tip): most day closes raise nothing."""
        return explain(self.metrics, self.health, self.before)


def _score(
    record: AccountRecord, day: date, profile: AccountProfile | None, config: ScoringConfig, *, complete: bool
) -> _Scored:
    state, rules = record.state, config.rules
    metrics = close_metrics(state, day, rules, profile) if complete else tip_metrics(state, day, rules, profile)
    card = config.scorecards.for_profile(profile)
    previous = record.health
    week_ago = snapshot_before(record.history, date.fromordinal(day.toordinal() - 7))
    health = score_account(metrics, card, previous.band if previous else None, week_ago.points if week_ago else None)
    before = week_ago.score if week_ago else None
    return _Scored(metrics, health, before)


def close_day(
    account_id: str,
    record: AccountRecord,
    day: date,
    profile: AccountProfile | None,
    config: ScoringConfig,
    hold: DataHold | None = None,
) -> tuple[DayClose, list[RiskSignal]]:
    """Score the complete ``day``, estimate its churn risk and decide its signals; the record moves on to it.
    A raise a data problem may cause waits while ``hold`` says one touched the account (``hold_back``): the
    detectors raise on a change, so a condition that still holds once the problem is over is raised then."""
    scored = _score(record, day, profile, config, complete=True)
    model = config.risk_model
    risk = read_risk(model, record.state, day, profile, config.rules) if model else None
    signals: list[RiskSignal] = []
    held: tuple[SignalType, ...] = ()
    if not churned_by(record.state, day):
        thresholds = config.scorecards.thresholds
        now = current_conditions(scored.metrics, scored.health, thresholds, scored.before)
        ages: list[int | None] = []  # asked at most once, and only when something could be held

        def problem_age() -> int | None:
            if not ages:
                ages.append(hold(record.state, day) if hold else None)
            return ages[0]

        now, held = hold_back(now, record.active, problem_age, config.rules)
        rules_active: dict[SignalType, ActiveSignal] = {k: v for k, v in record.active.items() if k != _CHURN_RISK}
        changes, rules_active = transitions(now, rules_active, day, thresholds.clear_after_days)
        risk_active = record.active.get(_CHURN_RISK)
        if model and risk and scored.metrics.observed_days >= MIN_RISK_OBSERVED_DAYS:
            stepped, change = step_churn_risk(risk_active, risk, model, day)
            if (
                change
                and not change.recovered
                and (days := hold_days(_CHURN_RISK, config.rules))
                and (age := problem_age()) is not None
                and age < days
            ):
                held += (_CHURN_RISK,)  # the estimate reads the same gap: it waits as well
            else:
                risk_active = stepped
                changes += [change] if change else []
        record.active = rules_active | ({_CHURN_RISK: risk_active} if risk_active else {})
        signals = [_signal(account_id, t, day, scored, risk, record.health, profile, config) for t in changes]
    record.history = _trim(record.history, date.fromordinal(day.toordinal() - 7))
    points = {c.name: c.points for c in scored.health.components if c.points is not None}
    record.history[day] = Snapshot(scored.health.score, points)
    record.health = scored.health
    record.closed_on = day
    return DayClose(day, scored.health, risk, held), signals


def _signal(
    account_id: str,
    t: Transition,
    day: date,
    scored: _Scored,
    risk: RiskReading | None,
    previous: HealthScore | None,
    profile: AccountProfile | None,
    config: ScoringConfig,
) -> RiskSignal:
    kind = t.condition.signal_type
    return build_signal(
        account_id=account_id,
        transition=t,
        occurred_at=datetime.combine(day, time.max, tzinfo=UTC),
        health=scored.health,
        previous=previous,
        explanation=risk.explanation if risk and kind is SignalType.CHURN_RISK else scored.explanation,
        account=profile,
        quality=None if t.recovered else config.rule_quality.lookup(kind, t.condition.severity),
    )


def close_days_before(
    account_id: str,
    record: AccountRecord,
    day: date,
    profile: AccountProfile | None,
    config: ScoringConfig,
    closes: list[DayClose],
    signals: list[RiskSignal],
    hold: DataHold | None = None,
) -> None:
    """Close every day before ``day`` not closed yet, from the account's first day with data."""
    if record.closed_on is None:
        first = record.state.watermark.date() if record.state.watermark else day
        record.closed_on = first - _DAY
    on = record.closed_on + _DAY
    while on < day:
        close, raised = close_day(account_id, record, on, profile, config, hold)
        closes.append(close)
        signals.extend(raised)
        on += _DAY


def evaluate_account(
    account_id: str,
    record: AccountRecord,
    events: Iterable[ScorerEvent],
    profile: AccountProfile | None,
    config: ScoringConfig = ScoringConfig(),
    clock: datetime | None = None,
    hold: DataHold | None = None,
) -> Evaluation:
    """Fold ``events`` (in stream order) into ``record``, closing the days they pass; the tip is scored where
    the evaluation's ``tip`` is read (before ``record`` is evaluated again).
    ``clock``: the scorer's event-time clock, which moves an idle account's tip (and closes) forward; ``hold``:
    see ``close_day``."""
    closes: list[DayClose] = []
    signals: list[RiskSignal] = []
    late = 0
    record.folds += 1
    for e in events:
        if record.state.watermark is not None:
            close_days_before(account_id, record, e.occurred_at.date(), profile, config, closes, signals, hold)
        late += not apply_event(record.state, e, config.rules)
    tip = _latest(record.as_of, record.state.watermark, clock if record.state.watermark else None)
    if tip is None:
        return Evaluation(record, [], None, late=late)
    close_days_before(account_id, record, tip.date(), profile, config, closes, signals, hold)
    record.as_of = tip
    return Evaluation(record, signals, tip, late, tuple(closes), TipScore(record, tip.date(), profile, config))
