from datetime import date

import pytest
from pydantic import ValidationError

from services.demo.simulator import day_events, make_accounts
from shared.events import EVENT_ADAPTER, decode_event, encode_event


def test_event_round_trip() -> None:
    e = EVENT_ADAPTER.validate_python(
        {
            "kind": "ticket",
            "action": "opened",
            "event_id": "x",
            "account_id": "a",
            "ticket_id": "T1",
            "occurred_at": "2026-11-01T10:00:00Z",
        }
    )
    assert decode_event(encode_event(e)) == e


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"occurred_at": "2026-11-01T10:00:00"}, "occurred_at"),  # no timezone: ambiguous event time
        ({"kind": "nope"}, "kind"),
        ({"event_id": ""}, "event_id"),
        ({"nps": 11, "kind": "feedback"}, "nps"),
    ],
)
def test_invalid_events_name_the_field(patch: dict[str, object], field: str) -> None:
    raw = {
        "kind": "usage",
        "action": "login",
        "event_id": "x",
        "account_id": "a",
        "occurred_at": "2026-11-01T10:00:00Z",
        **patch,
    }
    if raw["kind"] == "feedback":
        raw.pop("action")
    with pytest.raises(ValidationError) as err:
        EVENT_ADAPTER.validate_python(raw)
    assert field in str(err.value)


def test_simulator_is_deterministic_and_valid() -> None:
    a = make_accounts(20, seed=3)
    assert a == make_accounts(20, seed=3)
    assert any(x.sliding for x in a)
    events = [e for acct in a for e in day_events(acct, date(2026, 11, 1), day_index=30, days=35, seed=3)]
    assert events == [e for acct in a for e in day_events(acct, date(2026, 11, 1), day_index=30, days=35, seed=3)]
    for e in events:
        EVENT_ADAPTER.validate_python(e)
