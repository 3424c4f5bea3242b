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

from datetime import date, timedelta

from services.scorer.detectors import ActiveSignal, Condition, Transition
from services.scorer.risk_features import RiskInputs
from services.scorer.risk_model import (
    RiskAlertState,
    RiskModel,
    estimate,
    explain_estimate,
    probability,
    step_risk_alert,
)
from services.scorer.risk_model_file import PEER_SOURCES
from services.scorer.rolling import close_risk_inputs
from services.scorer.windows import AccountState, WindowRules
from shared.accounts import AccountProfile
from shared.signals import Audience, Severity, SignalType


class RiskReading:
    """The estimate at one day close. Its explanation is worded when first read (a signal, the account's row):
    most closes read the probability alone."""

    __slots__ = ("_explanation", "_source", "probability")

    def __init__(
        self, probability: float, explanation: str | None = None, source: tuple[RiskModel, RiskInputs] | None = None
    ) -> None:
        self.probability = probability
        self._explanation = explanation
        self._source = source  # what the explanation is worded from, until it is

    @property
    def explanation(self) -> str:
        if self._explanation is None:
            model, inputs = self._source or (None, None)
            words = explain_estimate(estimate(model, inputs), model.horizon_days) if model and inputs else ""
            self._explanation, self._source = words, None
        return self._explanation

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RiskReading):
            return NotImplemented
        return (self.probability, self.explanation) == (other.probability, other.explanation)

    def __hash__(self) -> int:
        return hash((self.probability, self.explanation))

    def __repr__(self) -> str:
        return f"RiskReading(probability={self.probability!r}, explanation={self.explanation!r})"


def read_risk(
    model: RiskModel, state: AccountState, day: date, profile: AccountProfile | None, rules: WindowRules
) -> RiskReading:
    """The estimate at the close of ``day`` (complete)."""
    inputs = close_risk_inputs(state, day, profile, rules, _read_by(model))
    return RiskReading(probability(model, inputs), source=(model, inputs))


_READ_BY: dict[int, tuple[RiskModel, frozenset[str]]] = {}  # by id(model), holding the model (so the id stays its)


def _read_by(model: RiskModel) -> frozenset[str]:
    """The raw features a model's terms read, directly or through a peer percentile."""
    found = _READ_BY.get(id(model))
    if found is None or found[0] is not model:
        if len(_READ_BY) > 16:
            _READ_BY.clear()
        found = _READ_BY[id(model)] = (
            model,
            frozenset(t.source for t in model.terms) | frozenset(PEER_SOURCES.values()),
        )
    return found[1]


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
    if raised:
        return ActiveSignal(Severity.WARNING, today, today), Transition(_condition(reading, model), recovered=False)
    if active is None:  # none was open, none is raised: most closes
        return None, None
    if not after.open:
        return None, Transition(_condition(reading, model), recovered=True)
    held = today if after.days_below_exit == 0 else active.last_held
    return ActiveSignal(Severity.WARNING, held, active.since or active.last_held), None


def _condition(reading: RiskReading, model: RiskModel) -> Condition:
    evidence = {"churn_probability": round(reading.probability, 4), "threshold": model.thresholds.enter}
    return Condition(SignalType.CHURN_RISK, Severity.WARNING, Audience.CSM, evidence)
