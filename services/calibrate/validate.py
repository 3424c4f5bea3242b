"""How a model's warnings would have done: daily estimates at day closes, churn-risk alerts with hysteresis, and
the backtest's own measures (services/backtest/measures.py) over a period; choosing the alert thresholds.

An *alert* is raised at a day close when the estimate reaches the enter threshold and the account has no open
churn-risk alert; it clears once the estimate stayed below the exit threshold (0.7 x enter) for 3 closes in a row,
and one still open after 30 closes is judged afresh: raised again if the estimate is still at the enter threshold
(``step_risk_alert``; without that, an account flagged months before it churned is never warned inside the 14-60
days before, and recall stalled near 30-40% at any threshold). No alert in an account's first 28 days observed,
none once it churned. Precision, lift, recall with lead time (14-60 days) and volume are the backtest's, over the
alerts raised in the period; the ROC AUC is the backtest's over its account-weeks (an account-week reads the
estimate of that day's close).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from services.backtest.measures import build_report, score_measures
from services.backtest.model import AccountHistory, Alert, BacktestParams, Period, ScorePoint
from services.calibrate.snapshots import account_histories, observed_enough, replay_closes
from services.scorer.risk_features import risk_inputs
from services.scorer.risk_model import RiskAlertState, RiskModel, Thresholds, estimate, step_risk_alert
from services.scorer.windows import AccountState, WindowRules, churned_by
from shared.accounts import AccountProfile
from shared.events import Event

RISK_SIGNAL = "churn_risk"
EXIT_RATIO = 0.7
CANDIDATES = tuple(float(f"{0.01 * 80 ** (i / 47):.3g}") for i in range(48))  # 0.01 .. 0.8, geometric
MAX_ALERTS_PER_ACCOUNT_MONTH = 0.5
# The target is precision >= 3x the base rate; by default the threshold is chosen for 4x on the validation
# weeks, a margin for choosing on the weeks it is measured on (at exactly 3x there, later months came out at 3.0x).
DEFAULT_LIFT_GOAL = 4.0
MIN_JUDGED = 10  # a precision goal is not met by fewer judged alerts than this


@dataclass
class DailyRisk:
    """One account's estimate at each day close it was alive; ``warm``: observed for 28 days by then."""

    days: list[date] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    warm: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class ScoredBase:
    daily: dict[str, DailyRisk]
    accounts: list[AccountHistory]
    period: Period


def daily_risk(
    events: Iterable[Event],
    profiles: Mapping[str, AccountProfile],
    churned_on: Mapping[str, date],
    model: RiskModel,
    rules: WindowRules,
) -> ScoredBase:
    daily: dict[str, DailyRisk] = {}

    def visit(account_id: str, day: date, state: AccountState, profile: AccountProfile | None, seen: date) -> None:
        churn = churned_on.get(account_id)
        if (churn is not None and churn <= day) or churned_by(state, day):
            return
        p = estimate(model, risk_inputs(state, day, profile, rules)).probability
        d = daily.setdefault(account_id, DailyRisk())
        d.days.append(day)
        d.probabilities.append(p)
        d.warm.append(observed_enough(day, seen))

    span = replay_closes(events, profiles, visit, rules)
    return ScoredBase(daily, account_histories(span, profiles, churned_on), span.period)


def simulate_alerts(daily: Mapping[str, DailyRisk], t: Thresholds) -> list[Alert]:
    alerts = []
    for account_id, d in daily.items():
        state = RiskAlertState()
        for day, p, warm in zip(d.days, d.probabilities, d.warm, strict=True):
            if not warm:
                continue
            state, raised = step_risk_alert(state, p, t)
            if raised:
                alerts.append(Alert(account_id, RISK_SIGNAL, "critical" if p >= t.critical else "warning", day))
    return alerts


@dataclass(frozen=True)
class AlertFigures:
    enter: float
    alerts: int
    judged: int
    precision: float | None
    base_rate: float | None
    lift: float | None
    churners_observable: int
    recall: float | None  # churners warned 14-60 days ahead
    alerts_per_account_month: float | None
    alerts_per_csm_week: float | None
    max_alerts_per_csm_week: float | None


def thresholds_for(enter: float) -> Thresholds:
    return Thresholds(enter, float(f"{enter * EXIT_RATIO:.3g}"), min(0.95, float(f"{enter * 2:.3g}")))


def alert_figures(base: ScoredBase, t: Thresholds, period: Period, horizon_days: int) -> AlertFigures:
    alerts = [a for a in simulate_alerts(base.daily, t) if period.start <= a.raised_on <= period.end]
    report = build_report(base.accounts, alerts, period=period, params=BacktestParams(horizon_days=horizon_days))
    every = report.rules[0]  # all risk alerts
    return AlertFigures(
        enter=t.enter,
        alerts=every.alerts,
        judged=every.judged,
        precision=every.precision,
        base_rate=report.base_rate,
        lift=every.lift,
        churners_observable=every.churners_observable,
        recall=every.recall,
        alerts_per_account_month=every.alerts_per_account_month,
        alerts_per_csm_week=every.alerts_per_csm_week,
        max_alerts_per_csm_week=every.max_alerts_per_csm_week,
    )


def risk_auc(base: ScoredBase, period: Period, horizon_days: int) -> float | None:
    points = (
        ScorePoint(account_id, day, p)
        for account_id, d in base.daily.items()
        for day, p in zip(d.days, d.probabilities, strict=True)
    )
    params = BacktestParams(horizon_days=horizon_days)
    return score_measures(points, base.accounts, True, (), period=period, params=params, name="churn risk").auc


@dataclass(frozen=True)
class Goal:
    """What the enter threshold is chosen for, on the validation period."""

    target_precision: float | None = None  # reach this precision of alerts
    budget: float | None = None  # at most this many new alerts per CSM per week

    def describe(self) -> str:
        if self.target_precision is not None:
            return f"most churners warned with precision >= {self.target_precision:g}"
        if self.budget is not None:
            return f"most churners warned with <= {self.budget:g} new alerts per CSM per week"
        return (
            f"most churners warned with precision >= {DEFAULT_LIFT_GOAL:g}x the base rate and <= "
            f"{MAX_ALERTS_PER_ACCOUNT_MONTH:g} alerts per account per month"
        )

    def met(self, f: AlertFigures) -> bool:
        if self.budget is not None:
            return f.alerts_per_csm_week is not None and f.alerts_per_csm_week <= self.budget
        if f.precision is None or f.judged < MIN_JUDGED:
            return False
        if self.target_precision is not None:
            return f.precision >= self.target_precision
        volume_ok = (f.alerts_per_account_month or 0.0) <= MAX_ALERTS_PER_ACCOUNT_MONTH
        return f.lift is not None and f.lift >= DEFAULT_LIFT_GOAL and volume_ok


def choose_enter(figures: Sequence[AlertFigures], goal: Goal) -> tuple[AlertFigures, bool]:
    """The candidate meeting the goal that warns the most churners (ties: the higher precision); without one,
    the best lift among those with 10+ judged alerts. Returns (choice, whether the goal was met)."""

    def rank(f: AlertFigures) -> tuple[float, float, float]:
        return (f.recall or 0.0, f.precision or 0.0, f.enter)

    meeting = [f for f in figures if goal.met(f)]
    if meeting:
        return max(meeting, key=rank), True
    judged = [f for f in figures if f.judged >= MIN_JUDGED] or list(figures)
    return max(judged, key=lambda f: (f.lift or 0.0, f.enter)), False


def validation_period(period: Period, validation_days: int) -> Period:
    start = max(period.start, period.end - timedelta(days=validation_days - 1))
    return Period(start, period.end)


def figures_json(f: AlertFigures) -> dict[str, float | int | None]:
    return {k: (None if v is None else round(v, 5) if isinstance(v, float) else v) for k, v in vars(f).items()}


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 5)
