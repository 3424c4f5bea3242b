"""One account's step: fold new events into its state, re-score it, and decide which signals to emit. Pure.

The evaluation time ``as_of`` is event time, never wall-clock time: the latest of the account's own
watermark, the time it was last evaluated at, and the scorer's clock (the latest event time seen across the
topic, which lets a sweep advance accounts that send nothing). Replaying the same events in the same order
gives the same scores and the same signal ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.scorer.codec import state_from_json, state_to_json
from services.scorer.detectors import ActiveSignal, build_signal, current_conditions, transitions
from services.scorer.explain import explain
from services.scorer.metrics import WindowMetrics, window_metrics
from services.scorer.scorecard import ScorecardSet
from services.scorer.scoring import DEFAULT_SCORECARD, KNOWN_COMPONENTS, HealthScore, score_account
from services.scorer.windows import AccountState, WindowRules, apply_event
from shared.accounts import AccountProfile
from shared.events import Event
from shared.signals import Band, RiskSignal, Severity, SignalType

_ORDER = sorted(KNOWN_COMPONENTS)


@dataclass(frozen=True)
class ScoringConfig:
    rules: WindowRules = field(default_factory=WindowRules)
    scorecards: ScorecardSet = field(default_factory=lambda: ScorecardSet(DEFAULT_SCORECARD))


@dataclass(frozen=True)
class Snapshot:
    """The score and each component's points on one day, to say what changed over seven days."""

    score: float
    points: dict[str, float]


@dataclass
class AccountRecord:
    """Everything the scorer keeps about one account between batches."""

    state: AccountState = field(default_factory=AccountState)
    health: HealthScore | None = None
    active: dict[SignalType, ActiveSignal] = field(default_factory=dict)
    as_of: datetime | None = None
    history: dict[date, Snapshot] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    record: AccountRecord
    signals: list[RiskSignal]
    explanation: str
    as_of: datetime | None
    metrics: WindowMetrics | None = None
    late: int = 0


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def snapshot_before(history: dict[date, Snapshot], day: date) -> Snapshot | None:
    """The latest snapshot on or before ``day`` (the score "seven days ago")."""
    days = [d for d in history if d <= day]
    return history[max(days)] if days else None


def _trim(history: dict[date, Snapshot], week_ago: date) -> dict[date, Snapshot]:
    """Keep the last week and the latest snapshot before it (the "seven days ago" of days to come)."""
    older = [d for d in history if d < week_ago]
    keep_from = max(older) if older else week_ago
    return {d: s for d, s in history.items() if d >= keep_from}


def evaluate_account(
    account_id: str,
    record: AccountRecord,
    events: Iterable[Event],
    profile: AccountProfile | None,
    config: ScoringConfig = ScoringConfig(),
    clock: datetime | None = None,
) -> Evaluation:
    late = sum(1 for e in events if not apply_event(record.state, e, config.rules))
    as_of = _latest(record.as_of, record.state.watermark, clock if record.state.watermark else None)
    if as_of is None:
        return Evaluation(record, [], "", None, late=late)
    metrics = window_metrics(record.state, as_of.date(), config.rules, profile)
    card = config.scorecards.for_profile(profile)
    previous = record.health
    week_ago = snapshot_before(record.history, as_of.date() - timedelta(days=7))
    health = score_account(metrics, card, previous.band if previous else None, week_ago.points if week_ago else None)
    before = week_ago.score if week_ago else None
    now = current_conditions(metrics, health, config.scorecards.thresholds, before)
    explanation = explain(metrics, health, before)
    changes, active = transitions(now, record.active, as_of.date(), config.scorecards.thresholds.clear_after_days)
    signals = [
        build_signal(
            account_id=account_id,
            transition=t,
            occurred_at=as_of,
            health=health,
            previous=previous,
            explanation=explanation,
            account=profile,
        )
        for t in changes
    ]
    history = _trim(record.history, as_of.date() - timedelta(days=7))
    points = {c.name: c.points for c in health.components if c.points is not None}
    history[as_of.date()] = Snapshot(health.score, points)
    new_record = AccountRecord(record.state, health, active, as_of, history)
    return Evaluation(new_record, signals, explanation, as_of, metrics, late)


def history_to_json(history: dict[date, Snapshot]) -> dict[str, list[float | None]]:
    return {d.isoformat(): [s.score, *(s.points.get(n) for n in _ORDER)] for d, s in sorted(history.items())}


def history_from_json(data: dict[str, list[float | None]]) -> dict[date, Snapshot]:
    out = {}
    for d, values in data.items():
        points = {n: float(v) for n, v in zip(_ORDER, values[1:], strict=False) if v is not None}
        out[date.fromisoformat(d)] = Snapshot(float(values[0] or 0.0), points)
    return out


def health_to_json(h: HealthScore) -> list[dict[str, Any]]:
    return [vars(c) for c in h.components]


RECORD_COLUMNS = ("account_id", "state", "score", "band", "active_signals", "as_of", "history")


def record_from_row(row: Any) -> AccountRecord:
    """From an account_health row's columns in ``RECORD_COLUMNS``. The previous score comes back without its
    components: an evaluation recomputes them, and only the previous score and band are read (hysteresis,
    "score before" in signals)."""
    health = None
    if row.score is not None and row.band is not None:
        health = HealthScore(row.score, Band(row.band), ())
    return AccountRecord(
        state=state_from_json(row.state),
        health=health,
        active=active_from_json(row.active_signals, row.as_of),
        as_of=row.as_of,
        history=history_from_json(row.history or {}),
    )


def record_to_row(record: AccountRecord) -> dict[str, Any]:
    h = record.health
    return {
        "state": state_to_json(record.state),
        "score": h.score if h else None,
        "band": h.band.value if h else None,
        "components": health_to_json(h) if h else [],
        "active_signals": {
            k.value: {"severity": v.severity.value, "last_held": v.last_held.isoformat()}
            for k, v in record.active.items()
        },
        "as_of": record.as_of,
        "history": history_to_json(record.history),
    }


def active_from_json(data: dict[str, Any], as_of: datetime | None) -> dict[SignalType, ActiveSignal]:
    """Reads both forms: {type: {severity, last_held}} and the first release's {type: severity}."""
    out = {}
    for k, v in data.items():
        if isinstance(v, str):
            held = as_of.date() if as_of else date.min
            out[SignalType(k)] = ActiveSignal(Severity(v), held)
        else:
            out[SignalType(k)] = ActiveSignal(Severity(v["severity"]), date.fromisoformat(v["last_held"]))
    return out
