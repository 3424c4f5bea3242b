"""Stored state and score history carry a format version and are read by name: a row of an older version reads
back correctly after a field (or a scorecard component) is added, and adding one without a layout fails loudly."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.scorer.codec import DAYS, DayCodec, state_from_json, state_to_json
from services.scorer.evaluate import Snapshot
from services.scorer.layouts import DAY_LAYOUTS, HISTORY_LAYOUTS, LayoutError, RowLayouts
from services.scorer.record_rows import history_from_json, history_to_json
from services.scorer.windows import AccountState, DayBucket

# Rows exactly as the first release stored them (no version; days and history positional).
V1_STATE = json.loads(
    '{"d":{"9799":[3,9,0,0,1,0,0,0,0,0,0,0,0,0,"1f","3"],"9800":[2,0,0,150]},'
    '"wm":"2026-10-31T12:00:00+00:00","la":"2026-10-31T12:00:00+00:00","open":{"ab12cd34ef":38000000}}'
)
V1_HISTORY = json.loads('{"2026-10-30":[71.5,40,null,100,80,null,60,90,null,55]}')


def _round_trip(value: Any) -> Any:
    """As PostgreSQL hands a JSONB column back."""
    return json.loads(json.dumps(value, separators=(",", ":")))


def test_a_first_release_state_reads_back_by_name() -> None:
    state = state_from_json(_round_trip(V1_STATE))
    first, second = state.days[date(2026, 10, 30)], state.days[date(2026, 10, 31)]
    assert (first.logins, first.feature_uses, first.tickets_opened, first.users, first.features) == (3, 9, 1, 31, 3)
    assert (second.logins, second.api_calls, second.users) == (2, 150, 0)
    assert state.watermark == datetime(2026, 10, 31, 12, tzinfo=UTC)
    assert state_to_json(state)["v"] == DAYS.version >= 2


def test_a_first_release_history_reads_back_by_name() -> None:
    snap = history_from_json(_round_trip(V1_HISTORY))[date(2026, 10, 30)]
    assert snap.score == 71.5
    assert snap.points == {
        "engagement_breadth": 40,
        "onboarding_progress": 100,
        "recency": 80,
        "seat_utilisation": 60,
        "sentiment": 90,
        "usage_trend": 55,
    }


@dataclass(slots=True)
class NextDayBucket:
    """DayBucket as a later release might have it: a field added in the middle."""

    logins: int = 0
    feature_uses: float = 0.0
    key_feature_uses: float = 0.0
    api_calls: float = 0.0
    webinar_minutes: float = 0.0
    tickets_opened: int = 0
    tickets_escalated: int = 0
    tickets_urgent: int = 0
    tickets_resolved: int = 0
    resolve_hours: float = 0.0
    resolutions_timed: int = 0
    csat_sum: int = 0
    csat_count: int = 0
    nps_sum: int = 0
    nps_count: int = 0
    users: int = 0
    features: int = 0


NEXT_DAYS = DayCodec(
    NextDayBucket,
    RowLayouts("day", {**DAY_LAYOUTS.versions, DAY_LAYOUTS.current + 1: tuple(f.name for f in fields(NextDayBucket))}),
)


def _stored_state() -> AccountState:
    state = AccountState(watermark=datetime(2026, 11, 2, 9, tzinfo=UTC))
    state.days[date(2026, 11, 1)] = DayBucket(logins=4, api_calls=250.0, tickets_opened=2, csat_sum=9, users=0xF0)
    state.days[date(2026, 11, 2)] = DayBucket(feature_uses=3.5, nps_count=1, nps_sum=9, features=0x81)
    return state


def test_a_stored_state_reads_back_after_a_day_field_is_added() -> None:
    state = _stored_state()
    for row in (state_to_json(state), V1_STATE):  # the current version and the first release
        old = state_from_json(_round_trip(row))
        new = state_from_json(_round_trip(row), NEXT_DAYS)
        for day, bucket in old.days.items():
            read: Any = new.days[day]
            assert read.webinar_minutes == 0.0
            assert {f.name: getattr(read, f.name) for f in fields(DayBucket)} == {
                f.name: getattr(bucket, f.name) for f in fields(DayBucket)
            }
    later = state_from_json(_round_trip(state_to_json(state)), NEXT_DAYS)
    later.days[date(2026, 11, 1)] = NextDayBucket(logins=4, webinar_minutes=45.0, users=0xF0)  # type: ignore[assignment]
    row = _round_trip(state_to_json(later, NEXT_DAYS))
    assert row["v"] == NEXT_DAYS.version
    grown: Any = state_from_json(row, NEXT_DAYS).days[date(2026, 11, 1)]
    assert grown == NextDayBucket(logins=4, webinar_minutes=45.0, users=0xF0)


def test_a_stored_history_reads_back_after_a_scorecard_component_is_added() -> None:
    history = {date(2026, 11, 1): Snapshot(64.0, {"recency": 80.0, "usage_trend": 35.0, "sentiment": 90.0})}
    next_layouts = RowLayouts(
        "history", {**HISTORY_LAYOUTS.versions, 3: ("score", "adoption_depth", *HISTORY_LAYOUTS.current_fields[1:])}
    )
    for row in (history_to_json(history), V1_HISTORY):
        assert history_from_json(_round_trip(row), next_layouts) == history_from_json(_round_trip(row))
    assert history_from_json(_round_trip(history_to_json(history)), next_layouts) == history
    grown = {date(2026, 11, 2): Snapshot(70.0, {"adoption_depth": 20.0, "recency": 100.0})}
    row = _round_trip(history_to_json(grown, next_layouts))
    assert row["v"] == 3 and history_from_json(row, next_layouts) == grown


def test_a_field_added_without_a_new_layout_stops_start_up() -> None:
    with pytest.raises(LayoutError, match="declare a new version"):
        DayCodec(NextDayBucket, DAY_LAYOUTS)
    with pytest.raises(LayoutError, match="newer than this scorer knows"):
        state_from_json({"v": 99, "d": {"9800": [1]}})
