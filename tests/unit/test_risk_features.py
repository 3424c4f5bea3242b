"""risk_inputs on hand-made states: known values, None when unknown, per-seat figures only with a seat count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.scorer.risk_features import FEATURE_NAMES, describe_feature, risk_inputs
from services.scorer.windows import DEFAULT_RULES, AccountState, DayBucket
from shared.accounts import AccountProfile

DAY = date(2026, 5, 31)


def _state(days: int, *, logins: int = 2, uses: float = 3.0) -> AccountState:
    """``days`` days of use ending on DAY, ``logins`` + ``uses`` = activity per day."""
    state = AccountState()
    for n in range(days):
        state.days[DAY - timedelta(days=n)] = DayBucket(logins=logins, feature_uses=uses)
    state.last_activity_at = datetime(2026, 5, 29, 15, tzinfo=UTC)
    return state


def _profile(**fields: object) -> AccountProfile:
    base: dict[str, object] = {"account_id": "a", "name": "A", "plan": "growth", "seats_purchased": 5}
    return AccountProfile.model_validate({**base, **fields})


def test_levels_per_seat_and_weeks_over_the_days_observed() -> None:
    r = risk_inputs(_state(10), DAY, _profile(renewal_date=date(2026, 7, 1)), DEFAULT_RULES)
    v = r.values
    assert set(v) == set(FEATURE_NAMES)
    # 10 days observed: every window averages over those 10 days, not over days before the history began
    assert v["activity_7d"] == v["activity_28d"] == v["activity_90d"] == 5.0
    assert v["activity_per_seat_28d"] == 1.0
    assert v["logins_per_seat_7d"] == pytest.approx(0.4)
    assert v["activity_ratio_7_28"] == 1.0
    assert v["uses_per_login_28d"] == 1.5
    assert v["days_since_activity"] == 2
    assert v["days_to_renewal"] == 31
    assert v["seats"] == 5
    assert r.weekly_activity_per_seat == (1.0,)  # one complete week observed
    assert r.plan == "growth"
    assert r.observed_days == 10


def test_unknown_is_none_never_a_guess() -> None:
    r = risk_inputs(_state(30), DAY, None, DEFAULT_RULES)
    v = r.values
    for name in ("activity_per_seat_7d", "logins_per_seat_90d", "seat_use_7d", "tickets_per_seat_90d"):
        assert v[name] is None, name
    assert v["nps_latest"] is None and v["nps_known"] == 0.0
    assert v["csat_avg_90d"] is None and v["csat_known"] == 0.0
    assert v["resolve_hours_90d"] is None
    assert v["days_to_renewal"] is None and v["account_age_days"] is None and v["seats"] is None
    assert r.weekly_activity_per_seat == ()
    assert r.plan is None
    assert v["activity_28d"] == 5.0  # what is known still is


def test_seats_from_the_state_when_the_profile_has_none() -> None:
    state = _state(14)
    state.seats = (0, 10)
    r = risk_inputs(state, DAY, _profile(seats_purchased=None), DEFAULT_RULES)
    assert r.values["seats"] == 10
    assert r.values["activity_per_seat_7d"] == 0.5
    assert r.weekly_activity_per_seat == (0.5, 0.5)


def test_windows_tickets_sentiment_and_trend() -> None:
    state = _state(90, logins=1, uses=0.0)
    for n in range(7):  # the last week: triple use
        state.days[DAY - timedelta(days=n)].logins = 3
    state.days[DAY - timedelta(days=10)].tickets_opened = 2
    state.days[DAY - timedelta(days=10)].tickets_urgent = 1
    state.days[DAY - timedelta(days=40)].tickets_opened = 1
    state.days[DAY - timedelta(days=40)].csat_sum, state.days[DAY - timedelta(days=40)].csat_count = 7, 2
    state.latest_nps = (0, 4)
    state.open_tickets = {"t": 0}
    r = risk_inputs(state, DAY, _profile(created_date=date(2025, 1, 1)), DEFAULT_RULES)
    v = r.values
    assert (v["tickets_7d"], v["tickets_28d"], v["tickets_90d"]) == (0, 2, 3)
    assert (v["urgent_28d"], v["urgent_90d"]) == (1, 1)
    assert v["activity_28d"] == pytest.approx((7 * 3 + 21) / 28)
    assert v["activity_ratio_7_28"] == pytest.approx(3 / 1.5)
    assert v["csat_avg_90d"] == 3.5 and v["csat_known"] == 1.0
    assert v["nps_latest"] == 4 and v["nps_known"] == 1.0
    assert v["open_tickets"] == 1
    assert v["account_age_days"] == (DAY - date(2025, 1, 1)).days
    assert len(r.weekly_activity_per_seat) == 8
    assert r.weekly_activity_per_seat[0] == pytest.approx(3 / 5)
    assert r.weekly_activity_per_seat[1] == pytest.approx(1 / 5)


def test_a_day_after_the_history_counts_nothing_from_the_future() -> None:
    state = _state(20)
    r = risk_inputs(state, DAY - timedelta(days=5), _profile(), DEFAULT_RULES)
    assert r.values["activity_7d"] == 5.0  # days after the close are not read
    assert r.values["days_since_activity"] == 0


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("urgent_28d", 3, "3 urgent tickets in 28 days"),
        ("urgent_28d", 1, "1 urgent ticket in 28 days"),
        ("days_since_activity", 9, "last active 9 days ago"),
        ("activity_ratio_7_28", 0.55, "activity -45% vs the last 28 days"),
        ("nps_latest", 4, "NPS 4"),
        ("days_to_renewal", 32, "renewal in 32 days"),
        ("days_to_renewal", -58, "renewal 58 days ago"),
        ("activity_per_seat_28d", 1.234, "activity per seat 1.23 a day over 28 days"),
    ],
)
def test_feature_words(name: str, value: float, words: str) -> None:
    assert describe_feature(name, value) == words
