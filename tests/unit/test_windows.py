from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.codec import state_from_json, state_to_json
from services.scorer.metrics import window_metrics
from services.scorer.windows import (
    USER_BITS,
    AccountState,
    WindowRules,
    apply_event,
    distinct_estimate,
    hash_bit,
    prune,
)
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event

DAY0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
RULES = WindowRules(key_features=frozenset({"reports"}))


def usage(i: int, day: float, action: str = "login", user: str = "u1", **kw: object) -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "kind": "usage",
            "event_id": f"e{i}",
            "account_id": "a",
            "user_id": user,
            "action": action,
            "occurred_at": (DAY0 + timedelta(days=day)).isoformat(),
            **kw,
        }
    )


def ticket(i: int, day: float, action: str = "opened", priority: str = "normal", tid: str = "", **kw: object) -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "kind": "ticket",
            "event_id": f"t{i}-{action}",
            "account_id": "a",
            "ticket_id": tid or f"T{i}",
            "action": action,
            "priority": priority,
            "occurred_at": (DAY0 + timedelta(days=day)).isoformat(),
            **kw,
        }
    )


def feedback(i: int, day: float, **kw: object) -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "kind": "feedback",
            "event_id": f"f{i}",
            "account_id": "a",
            "occurred_at": (DAY0 + timedelta(days=day)).isoformat(),
            **kw,
        }
    )


def lifecycle(i: int, day: float, action: str) -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "kind": "lifecycle",
            "event_id": f"l{i}",
            "account_id": "a",
            "action": action,
            "occurred_at": (DAY0 + timedelta(days=day)).isoformat(),
        }
    )


def fold(events: list[Event], rules: WindowRules = RULES) -> AccountState:
    """The pure fold with the scorer's dedup rule: an event id counts once."""
    state, seen = AccountState(), set()
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            apply_event(state, e, rules)
    return state


def day(n: int) -> date:
    return (DAY0 + timedelta(days=n)).date()


def test_events_land_in_their_event_time_day() -> None:
    state = fold([usage(1, 0), usage(2, 0, user="u2"), usage(3, 3)])
    assert state.days[day(0)].logins == 2
    assert state.days[day(3)].logins == 1
    assert state.watermark == DAY0 + timedelta(days=3)
    assert window_metrics(state, day(3), RULES).active_users_current == 2


def test_an_event_lands_in_its_utc_day_whatever_offset_it_was_sent_with() -> None:
    at = "2026-11-20T23:30:00-05:00"  # 04:30 UTC the next day
    sent = [usage(1, 0, occurred_at=at), usage(2, 0, occurred_at="2026-11-21T04:30:00Z")]
    assert [e.occurred_at.isoformat() for e in sent] == ["2026-11-21T04:30:00+00:00"] * 2
    state = AccountState()
    for e in sent:
        apply_event(state, e, RULES)
    assert list(state.days) == [date(2026, 11, 21)]
    assert state.days[date(2026, 11, 21)].logins == 2


def test_current_window_against_baseline() -> None:
    events = [usage(d * 100 + k, d) for d in range(28) for k in range(10)]
    events += [usage(10_000 + d * 100 + k, 28 + d) for d in range(7) for k in range(4)]
    m = window_metrics(fold(events), day(35), RULES)  # usage: the 7 complete days before day 35
    assert m.activity_baseline == 10
    assert m.activity_current == 4
    assert m.usage_ratio == 0.4
    assert window_metrics(fold(events), day(34), RULES).logins_current == 28


def test_the_day_in_progress_does_not_look_like_a_usage_drop() -> None:
    steady = [usage(d * 100 + k, d) for d in range(35) for k in range(10)]
    morning = [*steady, usage(99_999, 35)]  # the first login of day 35
    assert window_metrics(fold(morning), day(35), RULES).usage_ratio == 1.0


def test_no_baseline_means_unknown_ratio_not_neutral() -> None:
    m = window_metrics(fold([usage(1, 0)]), DAY0.date(), RULES)
    assert m.usage_ratio is None


def test_tickets_escalations_open_tickets_and_time_to_resolve() -> None:
    state = fold(
        [
            ticket(1, 0),
            ticket(2, 1, priority="urgent"),
            ticket(3, 2, action="escalated", tid="T2"),
            ticket(4, 2.5, action="resolved", tid="T1", csat=2),
        ]
    )
    m = window_metrics(state, day(2), RULES)
    assert (m.tickets_current, m.escalations_current, m.urgent_current) == (2, 2, 1)
    assert m.open_tickets == 1
    assert m.resolve_hours_avg == 60.0
    assert m.csat_avg == 2.0


def test_resolution_seen_before_its_opening_is_timed_the_same() -> None:
    opened, resolved = ticket(1, 0), ticket(2, 1, action="resolved", tid="T1")
    a, b = fold([opened, resolved]), fold([resolved, opened])
    assert state_to_json(a) == state_to_json(b)
    assert window_metrics(b, day(1), RULES).resolve_hours_avg == 24.0


def test_feature_breadth_key_features_and_seats() -> None:
    state = fold(
        [
            usage(1, 0, action="feature_used", feature="reports", quantity=3),
            usage(2, 0, action="feature_used", feature="exports"),
            usage(3, 1, action="feature_used", feature="reports", user="u2"),
        ]
    )
    profile = AccountProfile(account_id="a", name="A", seats_purchased=4, created_date=day(-10))
    m = window_metrics(state, day(1), RULES, profile)
    assert (m.features_current, m.key_feature_uses_current, m.feature_uses_current) == (2, 4, 5)
    assert m.seat_utilisation == 0.5
    assert m.account_age_days == 11


def test_nps_latest_average_and_lifecycle() -> None:
    state = fold(
        [
            feedback(1, 3, nps=4),
            feedback(2, 1, nps=10),
            lifecycle(3, 0, "signed_up"),
            lifecycle(4, 5, "onboarding_milestone"),
        ]
    )
    m = window_metrics(state, day(5), RULES)
    assert (m.nps_latest, m.nps_avg) == (4, 7.0)
    assert m.account_age_days == 5 and m.activated is True


def test_renewal_and_inactivity_advance_with_the_evaluation_day_alone() -> None:
    state = fold([usage(1, 0)])
    profile = AccountProfile(account_id="a", name="A", renewal_date=day(30))
    early, later = window_metrics(state, day(1), RULES, profile), window_metrics(state, day(20), RULES, profile)
    assert (early.days_since_activity, early.days_to_renewal) == (1, 29)
    assert (later.days_since_activity, later.days_to_renewal) == (20, 10)


def test_events_older_than_the_grace_are_dropped_and_counted() -> None:
    rules = WindowRules(grace_days=3)
    state = fold([usage(1, 10), usage(2, 8), usage(3, 6)], rules)
    assert day(8) in state.days and day(6) not in state.days
    assert state.late_events == 1


def test_prune_drops_days_past_the_horizon() -> None:
    state = fold([usage(1, 0), usage(2, 100)])
    assert list(state.days) == [day(100)]
    prune(state, day(200), RULES)
    assert state.days == {}


def test_distinct_estimate_is_close_for_typical_accounts() -> None:
    for n in (1, 10, 50, 150):
        bitmap = 0
        for u in range(n):
            bitmap |= 1 << hash_bit(f"user-{u}", USER_BITS)
        assert distinct_estimate(bitmap, USER_BITS) == pytest.approx(n, rel=0.25, abs=1)


def test_state_round_trips_through_compact_json() -> None:
    state = fold(
        [
            usage(1, 0),
            usage(2, 1, action="feature_used", feature="reports", quantity=3),
            ticket(3, 2),
            feedback(4, 2, nps=9),
            lifecycle(5, 0, "signed_up"),
        ]
    )
    assert state_from_json(state_to_json(state)) == state


def test_a_busy_account_stays_under_2_kb() -> None:
    import json

    events = [usage(d * 1000 + u, d + u / 100, user=f"user-{u}") for d in range(90) for u in range(30)]
    events += [usage(10**6 + d, d, action="feature_used", feature=f"f{d % 8}", quantity=7) for d in range(90)]
    events += [ticket(2 * 10**6 + d, d) for d in range(0, 90, 3)]
    size = len(json.dumps(state_to_json(fold(events)), separators=(",", ":")))
    assert size <= 2048, size


GRACE = 7
_event = st.builds(
    lambda i, d, user, kind: {
        "u": lambda: usage(2 * i, d / 4, user=user),
        "f": lambda: usage(2 * i + 1, d / 4, action="feature_used", feature=user, user=user, quantity=2),
        "t": lambda: ticket(i, d / 4),
        "r": lambda: ticket(i, d / 4, action="resolved", csat=3),
        "n": lambda: feedback(i, d / 4, nps=i % 11),
    }[kind](),
    st.integers(0, 60),
    st.integers(0, 4 * GRACE),  # every event within the grace period of every other
    st.sampled_from(["u1", "u2", "u3"]),
    st.sampled_from(["u", "f", "t", "r", "n"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=40), st.randoms(use_true_random=False))
def test_state_does_not_depend_on_arrival_order(drawn: list[Event], rnd: object) -> None:
    unique: dict[str, Event] = {}
    for e in drawn:  # one event per id (a ticket is opened once and resolved once)
        unique.setdefault(e.event_id, e)
    events = list(unique.values())
    shuffled = list(events) + list(events[:5])  # and duplicates count once
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    rules = WindowRules(grace_days=GRACE)
    a, b = fold(events, rules), fold(shuffled, rules)
    assert state_to_json(a) == state_to_json(b)
    for as_of in (day(3), day(7), date(2026, 11, 15)):
        assert window_metrics(a, as_of, rules) == window_metrics(b, as_of, rules)


@pytest.mark.parametrize(
    ("history_days", "ratio"),
    [
        (7 + 13, None),  # 13 days of baseline: not enough history to call it a baseline
        (7 + 16, 1.0),  # 16 days of baseline at the same pace as now: steady, not a surge
        (7 + 28, 1.0),
    ],
)
def test_young_account_baseline_is_averaged_over_the_days_it_existed(history_days: int, ratio: float | None) -> None:
    events = [usage(d * 100 + k, d) for d in range(history_days) for k in range(5)]
    m = window_metrics(fold(events), (DAY0 + timedelta(days=history_days)).date(), RULES)
    assert m.usage_ratio == ratio


_far_event = st.builds(
    lambda i, d, user, kind: {
        "u": lambda: usage(2 * i, d / 2, user=user),
        "f": lambda: usage(2 * i + 1, d / 2, action="feature_used", feature=user, user=user, quantity=2),
        "t": lambda: ticket(i, d / 2),
        "r": lambda: ticket(i, d / 2, action="resolved", csat=3),
    }[kind](),
    st.integers(0, 10**4),
    st.integers(0, 100),  # watermark steps small and large, late events, days leaving a 20-day horizon
    st.sampled_from(["u1", "u2", "u3"]),
    st.sampled_from(["u", "f", "t", "r"]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_far_event, max_size=60),
    st.sampled_from([RULES, WindowRules(current_days=3, horizon_days=20, grace_days=5)]),
)
def test_every_fold_leaves_the_state_as_pruned_as_a_full_prune(events: list[Event], rules: WindowRules) -> None:
    state = AccountState()
    for e in events:
        apply_event(state, e, rules)
        assert state.watermark is not None
        before = state_to_json(state)
        prune(state, state.watermark.date(), rules)  # the incremental prune left nothing for it to do
        assert state_to_json(state) == before


def test_a_replay_day_by_day_keeps_only_the_horizon() -> None:
    rules = WindowRules(current_days=3, horizon_days=20)
    state = fold([usage(d, d) for d in range(60)], rules)
    assert sorted(state.days) == [day(d) for d in range(39, 60)]
    assert [d for d, b in state.days.items() if b.users] == [day(d) for d in range(57, 60)]


def test_a_changed_horizon_still_drops_the_days_now_past_it() -> None:
    state = fold([usage(1, 0), usage(2, 50)], WindowRules(horizon_days=90))
    apply_event(state, usage(3, 51), WindowRules(horizon_days=30))
    assert list(state.days) == [day(50), day(51)]
