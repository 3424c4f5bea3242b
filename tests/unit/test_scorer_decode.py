"""The scorer's msgspec decoder and the published pydantic schema accept and reject the same inputs, with the
same values; whatever msgspec takes, the schema takes too (so the fallback never changes a verdict)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.scorer.decode import UsageRecord, decode_fast, decode_scorer_event
from shared.events import decode_event

AT = "2026-11-20T12:00:00Z"
USAGE = {"kind": "usage", "action": "login", "event_id": "e1", "account_id": "acct-1", "occurred_at": AT}
TICKET = {
    "kind": "ticket",
    "action": "opened",
    "event_id": "t1",
    "account_id": "a",
    "ticket_id": "T",
    "occurred_at": AT,
}


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    body = {**base, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not _DROP}).encode()


_DROP = object()
VALID = [
    _with(USAGE),
    _with(USAGE, action="feature_used", feature="reports", quantity=3),
    _with(USAGE, action="seats_changed", seats=12, quantity=0),
    _with(USAGE, occurred_at="2026-11-20T12:00:00+05:30"),
    _with(USAGE, occurred_at="2026-11-20 12:00:00Z"),
    _with(USAGE, occurred_at="2026-11-20T12:00:00.1234567Z"),  # beyond microseconds: the schema truncates
    _with(USAGE, occurred_at="2026-11-20T12:00Z"),
    _with(USAGE, occurred_at="2026-11-20T12:00:00.5-02:00", received_at="2026-11-20T14:00:01Z"),
    _with(USAGE, quantity=2.5, user_id="u", source="sdk", properties={"a": [1, {"b": None}]}, flags=["x"]),
    _with(USAGE, quantity="3"),
    _with(USAGE, schema_version=1),
    _with(TICKET, priority="urgent"),
    _with(TICKET, action="resolved", csat=5),
    _with(TICKET, action="resolved", csat=4.0),
    {"kind": "feedback", "event_id": "f", "account_id": "a", "occurred_at": AT, "nps": 0, "comment": ""},
    {"kind": "lifecycle", "action": "churned", "event_id": "l", "account_id": "a", "occurred_at": AT},
    {
        "kind": "lifecycle",
        "action": "plan_changed",
        "plan": "pro",
        "event_id": "l",
        "account_id": "a",
        "occurred_at": AT,
    },
]
INVALID = [
    b"{not json",
    b"[]",
    b'{"kind": "usage"}',
    _with(USAGE, kind=_DROP),
    _with(USAGE, kind="telemetry"),
    _with(USAGE, colour="red"),
    _with(USAGE, occurred_at="2026-11-20T12:00:00"),
    _with(USAGE, occurred_at="yesterday"),
    _with(USAGE, occurred_at="2026-11-20T24:00:00Z"),
    _with(USAGE, account_id="acct 1"),
    _with(USAGE, account_id="acct/1"),
    _with(USAGE, account_id="acct-1\n"),
    _with(USAGE, account_id=""),
    _with(USAGE, account_id=None),
    _with(USAGE, event_id=""),
    _with(USAGE, event_id="e" * 101),
    _with(USAGE, user_id=""),
    _with(USAGE, quantity=-1),
    _with(USAGE, quantity=1e10),
    _with(USAGE, action="logout"),
    _with(USAGE, schema_version=2),
    _with(USAGE, flags=["f"] * 11),
    _with(USAGE, flags=["f" * 101]),
    _with(USAGE, seats=-1),
    _with(TICKET, ticket_id=_DROP),
    _with(TICKET, priority="URGENT"),
    _with(TICKET, csat=0),
    _with(TICKET, csat=6),
    {"kind": "feedback", "event_id": "f", "account_id": "a", "occurred_at": AT, "nps": 11},
    {"kind": "lifecycle", "event_id": "l", "account_id": "a", "occurred_at": AT},
]


def _raw(value: bytes | dict[str, Any]) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def _verdict(raw: bytes) -> dict[str, Any] | None:
    """The schema's reading of ``raw`` (field by field), or None if it rejects it."""
    try:
        event = decode_event(raw)
    except ValidationError:
        return None
    return {name: getattr(event, name) for name in type(event).model_fields}


def _same(raw: bytes) -> None:
    expected = _verdict(raw)
    fast = decode_fast(raw)
    if fast is not None:  # msgspec never takes what the schema refuses, nor reads it differently
        assert expected is not None, raw
        assert {name: getattr(fast, name) for name in expected} == expected, raw
    if expected is None:
        with pytest.raises(ValidationError):
            decode_scorer_event(raw)
    else:
        got = decode_scorer_event(raw)
        assert {name: getattr(got, name) for name in expected} == expected, raw


@pytest.mark.parametrize("value", VALID)
def test_valid_events_decode_alike(value: bytes | dict[str, Any]) -> None:
    assert _verdict(_raw(value)) is not None
    _same(_raw(value))


@pytest.mark.parametrize("value", INVALID)
def test_invalid_events_are_rejected_by_both(value: bytes | dict[str, Any]) -> None:
    assert _verdict(_raw(value)) is None
    _same(_raw(value))


def test_a_plain_event_takes_the_fast_path() -> None:
    assert type(decode_scorer_event(_with(USAGE, occurred_at="2026-11-20T13:00:00+01:00"))) is UsageRecord
    assert decode_scorer_event(_with(USAGE)).occurred_at == decode_event(_with(USAGE)).occurred_at


_TEXT = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Z", "Cc")), max_size=6)
_VALUES = {
    "kind": st.sampled_from(["usage", "ticket", "feedback", "lifecycle", "other"]),
    "action": st.sampled_from(["login", "feature_used", "seats_changed", "opened", "resolved", "churned", "x"]),
    "event_id": st.one_of(_TEXT, st.just("e" * 100), st.just("e" * 101), st.integers()),
    "account_id": st.one_of(_TEXT, st.sampled_from(["a", "a b", "a/b", "a\n", "a\t", "\u00a0", "\x1c"])),
    "occurred_at": st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        st.datetimes().map(lambda d: d.isoformat()),
        st.sampled_from([AT, "2026-11-20T12:00:00.9999999Z", "2026-11-20", "2026-11-20T12:00:00+24:00"]),
        st.integers(0, 2**31),
    ),
    "quantity": st.one_of(st.floats(allow_nan=False), st.integers(), st.text(max_size=3), st.none()),
    "seats": st.one_of(st.integers(-2, 2**70), st.floats(allow_nan=False), st.booleans(), st.none()),
    "csat": st.one_of(st.integers(-1, 7), st.sampled_from([4.0, 4.5, "4", True])),
    "nps": st.one_of(st.integers(-1, 12), st.none()),
    "ticket_id": _TEXT,
    "priority": st.sampled_from(["low", "urgent", "Urgent", None]),
    "flags": st.one_of(st.none(), st.lists(_TEXT, max_size=12)),
    "schema_version": st.sampled_from([1, 2, 1.0, "1", True]),
    "properties": st.one_of(st.dictionaries(_TEXT, st.integers(), max_size=2), st.lists(st.integers(), max_size=1)),
    "extra": st.integers(),
}


_BASES = {
    "usage": USAGE,
    "ticket": TICKET,
    "feedback": {"kind": "feedback", "event_id": "f", "account_id": "a", "occurred_at": AT},
    "lifecycle": {"kind": "lifecycle", "action": "renewed", "event_id": "l", "account_id": "a", "occurred_at": AT},
}


@st.composite
def _bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of some kind with a few fields replaced (by valid or invalid values) or removed."""
    body: dict[str, Any] = dict(draw(st.sampled_from(list(_BASES.values()))))
    for name in draw(st.lists(st.sampled_from(sorted(_VALUES)), max_size=3, unique=True)):
        body[name] = draw(_VALUES[name])
    for name in draw(st.lists(st.sampled_from(sorted(body)), max_size=1)):
        del body[name]
    return body


@settings(max_examples=500, deadline=None)
@given(_bodies())
def test_any_input_gets_the_same_verdict_and_values(body: dict[str, Any]) -> None:
    _same(json.dumps(body).encode())
