"""Snapshots at day closes, labelled and censored, on a hand-made history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.calibrate.snapshots import replay_closes, weekly_snapshots
from services.scorer.windows import DEFAULT_RULES, AccountState
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event

START = date(2026, 1, 5)


def _at(day: int, hour: int = 12) -> datetime:
    return datetime.combine(START + timedelta(days=day), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def _event(account: str, n: int, at: datetime, kind: str = "usage", **fields: Any) -> Event:
    body = {"kind": kind, "event_id": f"{account}-{n}", "account_id": account, "occurred_at": at.isoformat()}
    if kind == "usage":
        body |= {"action": "login", "user_id": f"{account}-u"}
    return EVENT_ADAPTER.validate_python(body | fields)


def _history() -> tuple[list[Event], dict[str, AccountProfile]]:
    """a churns on day 70; b and c use the product every day to day 99; c was created a year before."""
    events = []
    for day in range(100):
        for account in ("a", "b", "c"):
            if account == "a" and day == 70:
                events.append(_event("a", day, _at(day), "lifecycle", action="churned"))
            elif account != "a" or day < 70:
                events.append(_event(account, day, _at(day)))
    events.sort(key=lambda e: e.occurred_at)
    created = {"a": START, "b": START, "c": date(2025, 1, 1)}
    profiles = {k: AccountProfile(account_id=k, name=k, seats_purchased=4, created_date=v) for k, v in created.items()}
    return events, profiles


def test_weekly_grid_labels_churn_within_the_horizon_and_censors_the_end() -> None:
    events, profiles = _history()
    churn = {"a": START + timedelta(days=70)}
    snaps = weekly_snapshots(events, profiles, churn, horizon_days=30, rules=DEFAULT_RULES)
    by_account: dict[str, list[tuple[int, bool]]] = {}
    for s in snaps.snapshots:
        by_account.setdefault(s.account_id, []).append(((s.day - START).days, s.label))
    # b: first day + 28, then weekly, up to the data end (day 99) - 30 = day 69
    assert by_account["b"] == [(28, False), (35, False), (42, False), (49, False), (56, False), (63, False)]
    # a: alive before day 70 only; followed by churn within 30 days from day 40 on
    assert by_account["a"] == [(28, False), (35, False), (42, True), (49, True), (56, True), (63, True)]
    # c: its own grid (created a year before: 2025-01-29 + 7k falls on days 2, 9, ...), once observed 28 days
    assert [d for d, _ in by_account["c"]] == [30, 37, 44, 51, 58, 65]
    assert snaps.period.start == START and snaps.period.end == START + timedelta(days=99)
    s = snaps.snapshots[0]
    assert s.inputs().values["logins_7d"] == 1.0 and s.inputs().values["seats"] == 4
    assert {h.account_id: h.churned_on for h in snaps.accounts} == {"a": churn["a"], "b": None, "c": None}


def test_a_day_close_sees_that_days_events_and_nothing_later() -> None:
    events = [
        _event("a", 1, _at(0, 9)),
        _event("a", 2, _at(1, 9)),
        _event("a", 3, _at(1, 23)),
        _event("b", 1, _at(2, 9)),
        _event("a", 4, _at(3, 9)),
        _event("b", 2, _at(5, 9)),  # a sends nothing after day 3: its days are still closed to the end
    ]
    seen: dict[tuple[str, int], int] = {}

    def visit(account_id: str, day: date, state: AccountState, profile: object, first: date) -> None:
        seen[(account_id, (day - START).days)] = sum(b.logins for b in state.days.values())

    span = replay_closes(events, {}, visit, DEFAULT_RULES)
    assert seen == {("a", 0): 1, ("a", 1): 3, ("a", 2): 3, ("a", 3): 4, ("a", 4): 4, ("a", 5): 4,
                    ("b", 2): 1, ("b", 3): 1, ("b", 4): 1, ("b", 5): 2}  # fmt: skip
    assert span.first_event == {"a": START, "b": START + timedelta(days=2)}
