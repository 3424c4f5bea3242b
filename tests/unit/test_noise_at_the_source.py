"""Noise removed at the source: no stall for products that send no milestones, no verdict on a week of data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.scorer.evaluate import AccountRecord, evaluate_account
from services.scorer.metrics import window_metrics
from services.scorer.windows import AccountState
from shared.accounts import AccountProfile, LifecycleStage
from shared.events import EVENT_ADAPTER, Event
from shared.signals import SignalType

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _profile(stage: LifecycleStage, created: date) -> AccountProfile:
    return AccountProfile(account_id="a", name="A", seats_purchased=25, lifecycle_stage=stage, created_date=created)


def _login(n: int, at: datetime, user: str = "u1") -> Event:
    body = {"kind": "usage", "action": "login", "event_id": f"e{n}", "account_id": "a", "user_id": user}
    return EVENT_ADAPTER.validate_python(body | {"occurred_at": at.isoformat()})


@pytest.mark.parametrize(
    ("stage", "milestone", "expected"),
    [
        (LifecycleStage.ADOPTION, False, None),  # nothing says this product sends milestones at all
        (LifecycleStage.ONBOARDING, False, False),
        (LifecycleStage.ADOPTION, True, True),
        (LifecycleStage.ONBOARDING, True, True),
    ],
)
def test_activation_is_known_only_where_it_can_be(
    stage: LifecycleStage, milestone: bool, expected: bool | None
) -> None:
    state = AccountState(activated_on=date(2026, 1, 9) if milestone else None)
    m = window_metrics(state, date(2026, 6, 1), profile=_profile(stage, date(2025, 5, 1)))
    assert m.activated is expected


def test_an_old_account_of_a_product_without_milestones_never_stalls() -> None:
    profile = _profile(LifecycleStage.ADOPTION, START.date() - timedelta(days=40))
    events = [_login(d, START + timedelta(days=d)) for d in range(60)]
    ev = evaluate_account("a", AccountRecord(), events, profile)
    assert SignalType.ONBOARDING_STALL not in {s.signal_type for s in ev.signals}
    assert "not activated" not in ev.explanation


def test_an_onboarding_account_without_a_milestone_still_stalls() -> None:
    profile = _profile(LifecycleStage.ONBOARDING, START.date())
    events = [_login(d, START + timedelta(days=d)) for d in range(40)]
    ev = evaluate_account("a", AccountRecord(), events, profile)
    assert SignalType.ONBOARDING_STALL in {s.signal_type for s in ev.signals}


def test_a_new_account_gets_no_band_verdict_on_its_first_days() -> None:
    """One user of 25 seats in the first week reads as '4% of seats active': no yellow or red from that."""
    profile = _profile(LifecycleStage.ADOPTION, START.date())
    events = [_login(d, START + timedelta(days=d)) for d in range(10)]
    ev = evaluate_account("a", AccountRecord(), events, profile)
    assert ev.health is not None and ev.health.band.value != "green", "the score itself may be low"
    assert not {s.signal_type for s in ev.signals} & {SignalType.BAND_CHANGE, SignalType.SCORE_DROP}
