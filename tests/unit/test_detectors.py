from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from services.scorer.detectors import ActiveSignal, Thresholds, current_conditions, transitions
from services.scorer.evaluate import AccountRecord, evaluate_account
from services.scorer.scoring import score_account
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event
from shared.signals import Audience, Band, Severity, SignalType
from tests.unit.factories import metrics

TH = Thresholds()


def conditions(score_7d_ago: float | None = None, **kw: Any) -> set[SignalType]:
    m = metrics(**kw)
    return set(current_conditions(m, score_account(m), TH, score_7d_ago))


def test_healthy_account_raises_nothing() -> None:
    assert conditions() == set()


@pytest.mark.parametrize(
    ("kw", "raised", "not_raised"),
    [
        ({"activity_current": 7.9}, SignalType.USAGE_DROP, None),
        ({"activity_current": 8.1}, None, SignalType.USAGE_DROP),
        ({"tickets_current": 3, "tickets_baseline_weekly": 1.0}, SignalType.TICKET_SPIKE, None),
        ({"tickets_current": 3, "tickets_baseline_weekly": 2.0}, None, SignalType.TICKET_SPIKE),
        ({"tickets_current": 2, "tickets_baseline_weekly": 0.0}, None, SignalType.TICKET_SPIKE),
        ({"escalations_current": 1, "urgent_current": 1}, SignalType.ESCALATION, None),
        ({"days_since_activity": 6}, SignalType.INACTIVITY, None),
        ({"days_since_activity": 5}, None, SignalType.INACTIVITY),
        ({"nps_latest": 6}, SignalType.DETRACTOR, None),
        ({"nps_latest": 7}, None, SignalType.DETRACTOR),
        ({"account_age_days": 31, "activated": False}, SignalType.ONBOARDING_STALL, None),
        ({"account_age_days": 29, "activated": False}, None, SignalType.ONBOARDING_STALL),
        ({"account_age_days": 31, "activated": True}, None, SignalType.ONBOARDING_STALL),
        ({"seats_purchased": 5}, SignalType.EXPANSION, None),  # 5 of 5 seats active while green
        ({"activity_current": 16}, SignalType.EXPANSION, None),  # usage +60% while green
        ({"activity_current": 3, "days_to_renewal": 30}, SignalType.RENEWAL_RISK, None),
        ({"days_to_renewal": 30}, None, SignalType.RENEWAL_RISK),  # green: no renewal risk
        ({"activity_current": 3, "days_to_renewal": 90}, None, SignalType.RENEWAL_RISK),
        ({"activity_current": 3}, SignalType.BAND_CHANGE, None),
        ({"activity_current": 3, "observed_days": 13}, None, SignalType.BAND_CHANGE),  # too young to judge
        ({"activity_current": 3, "days_to_renewal": 30, "observed_days": 5}, None, SignalType.RENEWAL_RISK),
        ({"seats_purchased": 5, "observed_days": 5}, None, SignalType.EXPANSION),
        ({"days_since_activity": 6, "observed_days": 5}, SignalType.INACTIVITY, None),  # not read from the score
    ],
)
def test_each_signal_has_a_threshold(
    kw: dict[str, Any], raised: SignalType | None, not_raised: SignalType | None
) -> None:
    found = conditions(**kw)
    if raised:
        assert raised in found
    if not_raised:
        assert not_raised not in found


def test_score_drop_over_seven_days() -> None:
    assert SignalType.SCORE_DROP in conditions(score_7d_ago=100, activity_current=7.5)
    assert SignalType.SCORE_DROP not in conditions(score_7d_ago=100)


def test_ticket_trouble_goes_to_support_too() -> None:
    m = metrics(escalations_current=3, urgent_current=3, tickets_current=3)
    found = current_conditions(m, score_account(m), TH)
    assert found[SignalType.ESCALATION].audience is Audience.BOTH
    assert found[SignalType.ESCALATION].severity is Severity.CRITICAL
    assert found[SignalType.TICKET_SPIKE].audience is Audience.BOTH


DAY = date(2026, 11, 1)


def test_transitions_raise_once_escalate_and_recover() -> None:
    m = metrics(activity_current=7)
    now = current_conditions(m, score_account(m), TH)
    first, active = transitions(now, {}, DAY)
    assert (SignalType.USAGE_DROP, False) in [(t.condition.signal_type, t.recovered) for t in first]
    assert transitions(now, active, DAY)[0] == []  # ongoing: not again
    worse = current_conditions(metrics(activity_current=3), score_account(metrics(activity_current=3)), TH)
    assert any(t.condition.signal_type is SignalType.USAGE_DROP for t in transitions(worse, active, DAY)[0])
    cleared, left = transitions({}, {SignalType.USAGE_DROP: ActiveSignal(Severity.WARNING, DAY)}, DAY)
    assert [(t.condition.signal_type, t.recovered) for t in cleared] == [(SignalType.USAGE_DROP, True)]
    assert left == {}


def test_recovery_waits_for_the_condition_to_stay_absent() -> None:
    raised = {SignalType.EXPANSION: ActiveSignal(Severity.INFO, DAY)}
    for gap, recovers in [(1, False), (2, False), (3, True)]:
        changes, _ = transitions({}, raised, DAY + timedelta(days=gap), clear_after_days=3)
        assert bool(changes) is recovers, gap


def test_lower_severity_does_not_re_raise_after_a_dip() -> None:
    crit = current_conditions(metrics(activity_current=3), score_account(metrics(activity_current=3)), TH)
    warn = current_conditions(metrics(activity_current=7), score_account(metrics(activity_current=7)), TH)
    _, active = transitions(crit, {}, DAY)
    changes, active = transitions(warn, active, DAY + timedelta(days=1))
    assert not [c for c in changes if c.condition.signal_type is SignalType.USAGE_DROP]
    changes, _ = transitions(crit, active, DAY + timedelta(days=2))
    assert not [c for c in changes if c.condition.signal_type is SignalType.USAGE_DROP]


def _login(i: int, at: datetime, account: str = "a") -> Event:
    return EVENT_ADAPTER.validate_python(
        {"kind": "usage", "action": "login", "event_id": f"e{i}", "account_id": account, "occurred_at": at.isoformat()}
        | {"quantity": 10, "user_id": "u1"}
    )


START = datetime(2026, 9, 1, 10, tzinfo=UTC)


def test_evaluate_is_reproducible_and_ids_are_deterministic() -> None:
    events = [_login(d, START + timedelta(days=d)) for d in range(28)]
    events += [_login(100 + d, START + timedelta(days=28 + d, hours=1)) for d in range(0, 7, 3)]

    def run() -> list[str]:
        record, ids = AccountRecord(), []
        for e in events:
            ev = evaluate_account("a", record, [e], None)
            record = ev.record
            ids += [s.signal_id for s in ev.signals]
        return ids

    first = run()
    assert first, "a drop from daily to every third day must raise usage_drop"
    assert first == run()


def test_the_clock_advances_inactivity_and_renewal_without_events() -> None:
    profile = AccountProfile(account_id="a", name="A", renewal_date=(START + timedelta(days=50)).date())
    record = AccountRecord()
    for d in range(28):
        record = evaluate_account("a", record, [_login(d, START + timedelta(days=d))], profile).record
    assert record.health is not None and record.health.band is Band.GREEN
    idle = evaluate_account("a", record, [], profile, clock=START + timedelta(days=40))
    types = {s.signal_type for s in idle.signals}
    assert SignalType.INACTIVITY in types
    assert idle.metrics is not None and idle.metrics.days_to_renewal == 10
    # signals are decided at day closes: the days the clock passed, each at its last instant
    closes = {s.occurred_at for s in idle.signals}
    assert all(at.time() == time.max and START + timedelta(days=27) < at < START + timedelta(days=40) for at in closes)
    again = evaluate_account("a", idle.record, [], profile, clock=START + timedelta(days=40))
    assert again.signals == []  # an ongoing condition is not raised twice
    assert "last active 13 days ago" in idle.explanation
