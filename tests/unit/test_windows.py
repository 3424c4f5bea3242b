from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scorer.windows import AccountState, apply_event, prune, state_from_json, state_to_json, window_metrics
from shared.events import EVENT_ADAPTER, Event

DAY0 = datetime(2026, 10, 1, 9, tzinfo=UTC)


def usage(i: int, day: int, action: str = "login", user: str = "u1", **kw: object) -> Event:
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


def ticket(i: int, day: int, action: str = "opened", priority: str = "normal") -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "kind": "ticket",
            "event_id": f"t{i}",
            "account_id": "a",
            "ticket_id": f"T{i}",
            "action": action,
            "priority": priority,
            "occurred_at": (DAY0 + timedelta(days=day)).isoformat(),
        }
    )


def fold(events: list[Event]) -> AccountState:
    state = AccountState()
    for e in events:
        apply_event(state, e)
    return state


def test_events_land_in_their_event_time_day() -> None:
    state = fold([usage(1, 0), usage(2, 0, user="u2"), usage(3, 3)])
    assert state.days[DAY0.date()].logins == 2
    assert state.days[DAY0.date()].users == {"u1", "u2"}
    assert state.days[(DAY0 + timedelta(days=3)).date()].logins == 1
    assert state.watermark == DAY0 + timedelta(days=3)


def test_current_window_against_baseline() -> None:
    # 28 baseline days with 10 logins each, then 7 current days with 4 logins each
    events = [usage(d * 100 + k, d) for d in range(28) for k in range(10)]
    events += [usage(10_000 + d * 100 + k, 28 + d) for d in range(7) for k in range(4)]
    m = window_metrics(fold(events), (DAY0 + timedelta(days=34)).date())
    assert m.activity_baseline == 10
    assert m.activity_current == 4
    assert m.usage_ratio == 0.4


def test_no_baseline_means_unknown_ratio_not_neutral() -> None:
    m = window_metrics(fold([usage(1, 0)]), DAY0.date())
    assert m.usage_ratio is None


def test_tickets_and_escalations_are_counted_in_window() -> None:
    state = fold([ticket(1, 0), ticket(2, 1, priority="urgent"), ticket(2, 2, action="escalated")])
    m = window_metrics(state, (DAY0 + timedelta(days=2)).date())
    assert m.tickets_current == 2
    assert m.escalations_current == 2


def test_days_since_activity() -> None:
    m = window_metrics(fold([usage(1, 0)]), (DAY0 + timedelta(days=6)).date())
    assert m.days_since_activity == 6


def test_prune_drops_days_past_the_horizon() -> None:
    state = fold([usage(1, 0), usage(2, 100)])
    prune(state, (DAY0 + timedelta(days=100)).date(), horizon_days=90)
    assert list(state.days) == [(DAY0 + timedelta(days=100)).date()]


def test_state_round_trips_through_json() -> None:
    state = fold([usage(1, 0), usage(2, 1, action="feature_used", feature="reports", quantity=3), ticket(3, 2)])
    assert state_from_json(state_to_json(state)) == state


_event = st.builds(
    lambda i, day, user, kind: usage(i, day, user=user) if kind == "u" else ticket(i, day),
    st.integers(0, 10_000),
    st.integers(0, 40),
    st.sampled_from(["u1", "u2", "u3"]),
    st.sampled_from(["u", "t"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=40), st.randoms(use_true_random=False))
def test_state_does_not_depend_on_arrival_order(events: list[Event], rnd: object) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    as_of = date(2026, 11, 15)
    a, b = fold(events), fold(shuffled)
    assert state_to_json(a) == state_to_json(b)
    assert window_metrics(a, as_of) == window_metrics(b, as_of)
