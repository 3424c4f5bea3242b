"""The rolling sums give what re-adding the windows gives, to the bit, at every close and tip of varied streams."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.churn_risk import RiskReading, read_risk
from services.scorer.codec import state_from_json, state_to_json
from services.scorer.day_sums import REACH, sums_through
from services.scorer.decode import decode_scorer_event
from services.scorer.metrics import window_metrics
from services.scorer.risk_features import FEATURE_NAMES, risk_inputs
from services.scorer.risk_model import estimate, explain_estimate
from services.scorer.rolling import (
    _RECENT,
    _SUPPORT,
    _USAGE,
    NOT_FROM_SUMS,
    close_metrics,
    close_risk_inputs,
    tip_metrics,
)
from services.scorer.windows import AccountState, WindowRules, apply_event
from tests.support.day_close_golden import GoldenAccount, golden_config

RULES = golden_config().rules
EVERY_FEATURE = frozenset(FEATURE_NAMES) - NOT_FROM_SUMS
ALWAYS_READ = {"open_tickets", "days_since_activity", "nps_latest", "nps_known", "account_age_days"}


def _check_close(state: AccountState, day: date, account: GoldenAccount, rules: WindowRules) -> bool:
    """The rolling close equals the re-added one; True if the sums held (the fast path was taken)."""
    held = sums_through(state, day, rules) is not None
    assert close_metrics(state, day, rules, account.profile) == window_metrics(
        state, day, rules, account.profile, day_complete=True
    ), day
    fast = close_risk_inputs(state, day, account.profile, rules, EVERY_FEATURE)
    slow = risk_inputs(state, day, account.profile, rules)
    assert {k: slow.values[k] for k in fast.values} == fast.values, day
    assert fast.values.keys() >= EVERY_FEATURE or not held
    assert (fast.weekly_activity_per_seat, fast.plan, fast.observed_days) == (
        slow.weekly_activity_per_seat,
        slow.plan,
        slow.observed_days,
    )
    return held


def _fold(seed: int, rules: WindowRules = RULES) -> int:
    """Folds one generated account as the scorer does (each event first closes the days before its own), checking
    every close and a tip after every few events; reloads the state now and then. Returns the fast closes."""
    account = GoldenAccount(seed)
    rng = random.Random(seed)
    events = [decode_scorer_event(json.dumps(e).encode()) for _, e in sorted(account.generate(), key=lambda x: x[0])]
    state, closed, fast = AccountState(), None, 0
    for n, e in enumerate(events):
        if state.watermark is not None:
            closed = closed or state.watermark.date() - timedelta(days=1)
            while closed + timedelta(days=1) < e.occurred_at.date():
                closed += timedelta(days=1)
                fast += _check_close(state, closed, account, rules)
        apply_event(state, e, rules)
        if closed is not None and rng.random() < 0.02:  # the scorer's clock closes idle days ahead of the events
            for _ in range(rng.randrange(1, 4)):
                closed += timedelta(days=1)
                fast += _check_close(state, closed, account, rules)
        if n % 7 == 0 and state.watermark is not None:
            tip = max(state.watermark.date(), (closed or state.watermark.date()) + timedelta(days=1))
            assert tip_metrics(state, tip, rules, account.profile) == window_metrics(state, tip, rules, account.profile)
        if rng.random() < 0.01:
            state = state_from_json(json.loads(json.dumps(state_to_json(state))))
    return fast


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_rolling_closes_and_tips_equal_re_added_windows(seed: int) -> None:
    _fold(seed)


def test_the_fast_path_is_taken_for_whole_numbers_and_skipped_for_fractions() -> None:
    whole = [s for s in range(40) if not GoldenAccount(s).fractional][:4]
    fractional = [s for s in range(40) if GoldenAccount(s).fractional][:2]
    assert all(_fold(s) > 30 for s in whole), "whole-number accounts must close through the sums"
    for s in fractional:
        _fold(s)  # equal either way (asserted in _fold)


def test_rules_beyond_the_reach_fall_back() -> None:
    short = WindowRules(horizon_days=REACH - 30, key_features=RULES.key_features)
    assert _fold(3, short) == 0


def test_the_feature_groups_cover_every_feature() -> None:
    grouped = _USAGE | _RECENT | _SUPPORT | NOT_FROM_SUMS | ALWAYS_READ | {"days_to_renewal", "seats"}
    assert grouped == set(FEATURE_NAMES)


def test_a_late_event_for_a_held_day_drops_the_sums() -> None:
    state = AccountState()
    day0 = date(2026, 3, 2)
    for d in range(3):
        at = f"{day0 + timedelta(days=d)}T10:00:00+00:00"
        body = {"kind": "usage", "action": "login", "event_id": f"e{d}", "account_id": "a", "occurred_at": at}
        apply_event(state, decode_scorer_event(json.dumps(body).encode()), RULES)
    assert sums_through(state, day0 + timedelta(days=2), RULES) is not None
    late = {"kind": "usage", "action": "login", "event_id": "late", "account_id": "a"}
    late["occurred_at"] = f"{day0}T11:00:00+00:00"
    apply_event(state, decode_scorer_event(json.dumps(late).encode()), RULES)
    assert state.sums is None
    assert close_metrics(state, day0 + timedelta(days=2), RULES).logins_current == 4


def test_a_risk_reading_words_its_explanation_as_the_estimate_does() -> None:
    model = golden_config().risk_model
    assert model is not None
    account = GoldenAccount(2)
    state = AccountState()
    for _, e in sorted(account.generate(), key=lambda x: x[0]):
        apply_event(state, decode_scorer_event(json.dumps(e).encode()), RULES)
    assert state.watermark is not None
    day = state.watermark.date()
    reading = read_risk(model, state, day, account.profile, RULES)
    eager = estimate(model, risk_inputs(state, day, account.profile, RULES))
    assert reading.probability == eager.probability
    assert reading.explanation == explain_estimate(eager, model.horizon_days)
    assert reading == RiskReading(eager.probability, reading.explanation)
