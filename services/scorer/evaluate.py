"""One account's step: fold new events into its state, re-score it, and decide which signals to emit. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.scorer.detectors import Thresholds, build_signal, current_conditions, transitions
from services.scorer.scoring import DEFAULT_SCORECARD, ComponentScore, HealthScore, Scorecard, score_account
from services.scorer.windows import (
    AccountState,
    apply_event,
    prune,
    state_from_json,
    state_to_json,
    window_metrics,
)
from shared.accounts import AccountProfile
from shared.events import Event
from shared.signals import Band, RiskSignal, Severity, SignalType


@dataclass(frozen=True)
class ScoringConfig:
    current_days: int = 7
    baseline_days: int = 28
    horizon_days: int = 90
    scorecard: Scorecard = DEFAULT_SCORECARD
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass
class AccountRecord:
    """Everything the scorer keeps about one account between batches."""

    state: AccountState = field(default_factory=AccountState)
    health: HealthScore | None = None
    active: dict[SignalType, Severity] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    record: AccountRecord
    signals: list[RiskSignal]
    explanation: str
    as_of: datetime | None


def evaluate_account(
    account_id: str,
    record: AccountRecord,
    events: Iterable[Event],
    profile: AccountProfile | None,
    config: ScoringConfig = ScoringConfig(),
) -> Evaluation:
    for event in events:
        apply_event(record.state, event)
    as_of = record.state.watermark
    if as_of is None:
        return Evaluation(record, [], "", None)
    prune(record.state, as_of.date(), config.horizon_days)
    metrics = window_metrics(record.state, as_of.date(), config.current_days, config.baseline_days)
    previous = record.health
    health = score_account(metrics, config.scorecard, previous.band if previous else None)
    now = current_conditions(metrics, health, config.thresholds)
    signals = [
        build_signal(
            account_id=account_id,
            transition=t,
            occurred_at=as_of,
            health=health,
            previous=previous,
            metrics=metrics,
            account=profile,
        )
        for t in transitions(now, record.active)
    ]
    new_record = AccountRecord(state=record.state, health=health, active={t: c.severity for t, c in now.items()})
    explanation = signals[0].explanation if signals else ""
    return Evaluation(new_record, signals, explanation, as_of)


def health_to_json(h: HealthScore) -> list[dict[str, Any]]:
    return [vars(c) for c in h.components]


def record_from_row(
    state: dict[str, Any],
    score: float | None,
    band: str | None,
    components: list[dict[str, Any]],
    active: dict[str, str],
) -> AccountRecord:
    health = None
    if score is not None and band is not None:
        health = HealthScore(score, Band(band), tuple(ComponentScore(**c) for c in components))
    return AccountRecord(
        state=state_from_json(state),
        health=health,
        active={SignalType(k): Severity(v) for k, v in active.items()},
    )


def record_to_row(record: AccountRecord) -> dict[str, Any]:
    h = record.health
    return {
        "state": state_to_json(record.state),
        "score": h.score if h else None,
        "band": h.band.value if h else None,
        "components": health_to_json(h) if h else [],
        "active_signals": {k.value: v.value for k, v in record.active.items()},
    }
