"""The churn-risk estimate at a day close, and the `churn_risk` alert it opens, renews and clears. Pure.

At each day close the loaded model (``CHURNWATCH_RISK_MODEL_PATH``, or the shipped default) estimates the
probability that the account churns within the model's horizon. The alert follows the model's own rule, the one
calibration chose its thresholds with (``step_risk_alert``): it opens when the estimate reaches ``enter``, holds
while it stays at or above ``exit`` (hysteresis: no flapping around one line), clears after ``clear_after_days``
closes below ``exit``, and after ``renew_after_days`` open it is judged afresh: raised again if the estimate is
still at ``enter`` (an estimate looks ``horizon_days`` ahead, so a month-old warning is stale), else cleared. The
thresholds were chosen for a target precision and an alert budget per CSM per week (``churnwatch calibrate``):
the budget holds on the data it was chosen on and is measured again by every backtest; it is not enforced across
accounts at run time, which would make one account's alert depend on others' and a replay on batching.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from services.scorer.detectors import ActiveSignal, Condition, Transition
from services.scorer.risk_features import risk_inputs
from services.scorer.risk_model import RiskAlertState, RiskModel, estimate, explain_estimate, step_risk_alert
from services.scorer.windows import AccountState, WindowRules
from shared.accounts import AccountProfile
from shared.signals import Audience, Severity, SignalType


@dataclass(frozen=True)
class RiskReading:
    probability: float
    explanation: str


def read_risk(
    model: RiskModel, state: AccountState, day: date, profile: AccountProfile | None, rules: WindowRules
) -> RiskReading:
    e = estimate(model, risk_inputs(state, day, profile, rules))
    return RiskReading(e.probability, explain_estimate(e, model.horizon_days))


def step_churn_risk(
    active: ActiveSignal | None, reading: RiskReading, model: RiskModel, today: date
) -> tuple[ActiveSignal | None, Transition | None]:
    """The alert after today's close (None: none open) and the transition to signal, if any."""
    before = RiskAlertState()
    if active is not None:
        yesterday = today - timedelta(days=1)
        since = active.since or active.last_held
        before = RiskAlertState(True, (yesterday - active.last_held).days, (yesterday - since).days)
    after, raised = step_risk_alert(before, reading.probability, model.thresholds)
    evidence = {"churn_probability": round(reading.probability, 4), "threshold": model.thresholds.enter}
    condition = Condition(SignalType.CHURN_RISK, Severity.WARNING, Audience.CSM, evidence)
    if raised:
        return ActiveSignal(Severity.WARNING, today, today), Transition(condition, recovered=False)
    if not after.open:
        return None, (Transition(condition, recovered=True) if active is not None else None)
    assert active is not None  # open and not raised today: it was open before
    held = today if after.days_below_exit == 0 else active.last_held
    return ActiveSignal(Severity.WARNING, held, active.since or active.last_held), None
