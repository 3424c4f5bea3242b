"""The churn-risk estimate at day closes: raised once at `enter`, held down to `exit`, cleared after three closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.churn_risk import RiskReading, step_churn_risk
from services.scorer.evaluate import AccountRecord, ScoringConfig, evaluate_account
from services.scorer.risk_model import RiskAlertState, RiskModel, Term, Thresholds, step_risk_alert
from shared.events import EVENT_ADAPTER, Event
from shared.signals import SignalType

# p = sigmoid(-3 + 0.5 * (days_since_activity - 0) / 1): 5% when active today, >= 50% after 6 quiet days
MODEL = RiskModel(
    horizon_days=60,
    terms=(Term("quiet", "days_since_activity", "identity", 0.0, 1.0, 0.5),),
    intercept=-3.0,
    peer_levels=(0.1, 0.5, 0.9),
    peers={},
    weeks_low_level=0.2,
    thresholds=Thresholds(enter=0.5, exit=0.3, critical=0.8),
    provenance={"made by": "a unit test"},
)
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _login(n: int, day: int) -> Event:
    body = {"kind": "usage", "action": "login", "event_id": f"e{n}", "account_id": "a", "user_id": "u"}
    return EVENT_ADAPTER.validate_python(body | {"occurred_at": (START + timedelta(days=day)).isoformat()})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.2, 0.31, 0.5, 0.9]), min_size=1, max_size=90))
def test_the_scorer_follows_the_rule_calibration_chose_its_thresholds_with(probabilities: list[float]) -> None:
    """Open at enter, hold down to exit, clear after three closes below, renew after 30: as step_risk_alert."""
    expected, state = [], RiskAlertState()
    got, active = [], None
    for n, p in enumerate(probabilities):
        was_open = state.open
        state, raised = step_risk_alert(state, p, MODEL.thresholds)
        expected.append("raised" if raised else "cleared" if was_open and not state.open else "")
        active, change = step_churn_risk(active, RiskReading(p, ""), MODEL, START.date() + timedelta(days=n))
        got.append("" if change is None else "cleared" if change.recovered else "raised")
        assert (active is not None) == state.open
    assert got == expected


def test_a_quiet_spell_raises_one_churn_risk_alert_explained_and_then_clears() -> None:
    days = [*range(40), *range(50, 60)]  # 40 active days, a 10-day silence, 10 active days
    events = [_login(n, d) for n, d in enumerate(days)]
    ev = evaluate_account("a", AccountRecord(), events, None, ScoringConfig(risk_model=MODEL))
    risk = [s for s in ev.signals if s.signal_type is SignalType.CHURN_RISK]
    assert [s.recovered for s in risk] == [False, True]
    raised, cleared = risk
    # quiet since day 39: p = sigmoid(-3 + 0.5 * 6) = 0.5 at the close of day 45
    assert raised.occurred_at.date() == (START + timedelta(days=45)).date()
    assert raised.evidence["churn_probability"] == 0.5
    assert raised.explanation.startswith("churn risk 50% within 60 days")
    # active again on day 50 (p = 5% < exit): cleared at the third close below exit
    assert cleared.occurred_at.date() == (START + timedelta(days=52)).date()
    closes = {c.day: c.risk for c in ev.closes}
    assert all(r is not None for r in closes.values())


def test_no_churn_risk_before_four_weeks_of_data() -> None:
    events = [_login(n, d) for n, d in enumerate([0, 1, 2, 20])]  # quiet for weeks, but only 20 days observed
    ev = evaluate_account("a", AccountRecord(), events, None, ScoringConfig(risk_model=MODEL))
    assert SignalType.CHURN_RISK not in {s.signal_type for s in ev.signals}
