"""Ingest's one-pass body validation: it accepts exactly what the field-naming path accepts, and nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.body import refuse_nul
from services.ingest.errors import IngestError
from services.ingest.validation import (
    OUT_OF_RANGE,
    EventRules,
    checked_batch,
    encode_received,
    parse_events,
    received_stamp,
    validate_body,
)
from shared.events import Event, decode_event, encode_event, stamp_received

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RULES = EventRules(2048, 20, timedelta(days=1), timedelta(days=365), "reject")


def usage(event_id: str = "e1", **extra: Any) -> dict[str, Any]:
    base = {"kind": "usage", "action": "login", "event_id": event_id, "account_id": "a", "occurred_at": NOW.isoformat()}
    return base | extra


def outcome(run: Any) -> Any:
    try:
        return run()
    except IngestError as err:
        return (err.status, err.code, err.fields, err.extra)


def test_a_usual_batch_is_stamped_and_encoded_as_written_to_kafka() -> None:
    body = json.dumps({"events": [usage("a", received_at="1999-01-01T00:00:00Z"), usage("b")]}).encode()
    valid = validate_body(body, NOW, RULES)
    written = [decode_event(v) for v in valid.values]
    assert [e.received_at for e in written] == [NOW, NOW]  # ingest's clock, whatever the client said
    as_before = [json.loads(encode_event(stamp_received(e, NOW))) for e in valid.events]
    assert [json.loads(v) for v in valid.values] == as_before  # the same JSON, only received_at comes first


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        (b'{"events": [' + json.dumps(usage()).encode() + b', {"kind": "usage"}]}', 422, "events[1].event_id"),
        (json.dumps(usage(occurred_at="2020-01-01T00:00:00Z")).encode(), 422, "occurred_at"),
        (json.dumps({"events": [usage(properties={"x": "y" * 3000})]}).encode(), 413, "events[0]"),
        (json.dumps(usage(properties={"x": "\x00"})).encode(), 422, "properties.x"),
        (b'{"events": [' + json.dumps(usage()).encode() + b', {"properties": "\\ud800"}]}', 422, "events[1]"),
        (json.dumps(usage(properties={"x": "\ud800"})).encode(), 422, "event"),
        (json.dumps({"events": []}).encode(), 422, "events"),
    ],
)
def test_a_doubtful_body_is_refused_naming_the_field(body: bytes, status: int, path: str) -> None:
    with pytest.raises(IngestError) as err:
        validate_body(body, NOW, RULES)
    assert err.value.status == status and err.value.fields[0]["path"] == path


def test_too_many_events_and_malformed_json_are_refused() -> None:
    with pytest.raises(IngestError) as err:
        validate_body(json.dumps({"events": [usage(str(i)) for i in range(21)]}).encode(), NOW, RULES)
    assert err.value.status == 413 and err.value.code == "batch_too_large"
    with pytest.raises(IngestError) as err:
        validate_body(b'{"events": [', NOW, RULES)
    assert err.value.status == 400


def test_out_of_range_events_are_flagged_under_the_flag_policy() -> None:
    rules = EventRules(2048, 20, timedelta(days=1), timedelta(days=365), "flag")
    late = usage("late", occurred_at=(NOW + timedelta(days=3)).isoformat())
    valid = validate_body(json.dumps({"events": [usage("ok"), late]}).encode(), NOW, rules)
    assert [e.flags for e in valid.events] == [None, [OUT_OF_RANGE]]
    assert decode_event(valid.values[1]).flags == [OUT_OF_RANGE]


in_range = st.sampled_from([NOW, NOW - timedelta(days=30), NOW + timedelta(hours=23)]).map(datetime.isoformat)
out_of_range = st.sampled_from([NOW + timedelta(days=2), NOW - timedelta(days=400)]).map(datetime.isoformat)
property_values = st.text(max_size=700) | st.integers() | st.floats() | st.just("\ud800")
fine_extras = {
    "user_id": st.just("u1"),
    "quantity": st.sampled_from([1, 2.5]),
    "received_at": st.just(NOW.isoformat()),
    "flags": st.just(["x"]),
    "properties": st.dictionaries(st.text(max_size=5), property_values, max_size=4),
}
doubtful_extras = {
    "kind": st.sampled_from(["ticket", "feedback", "x"]),
    "action": st.just("opened"),
    "ticket_id": st.just("T1"),
    "occurred_at": out_of_range | st.sampled_from(["yesterday", "2026-11-20T12:00:00", 5]),
    "quantity": st.sampled_from([-1, "3"]),
    "received_at": st.sampled_from(["soon", None]),
    "flags": st.just("x"),
    "unknown_field": st.just(1),
}
fine_event = st.fixed_dictionaries(
    {"kind": st.just("usage"), "action": st.just("feature_used"), "event_id": st.just("e"), "occurred_at": in_range},
    optional=fine_extras,
).map(lambda e: {"account_id": "acct-1", **e})
doubtful_event = st.tuples(fine_event, st.fixed_dictionaries({}, optional=doubtful_extras)).map(lambda p: p[0] | p[1])
event_like = st.one_of(fine_event, fine_event, fine_event, doubtful_event)
bodies = st.one_of(
    event_like,
    st.fixed_dictionaries({"events": st.lists(event_like, max_size=25)}, optional={"other": st.just(1)}),
    st.fixed_dictionaries({"events": st.just("nope") | st.none()}),
)


@settings(max_examples=400, deadline=None)
@given(bodies, st.sampled_from(["reject", "flag"]))
def test_the_one_pass_agrees_with_the_field_naming_path(payload: Any, policy: Any) -> None:
    rules = EventRules(2048, 20, timedelta(days=1), timedelta(days=365), policy)
    body = json.dumps(payload).encode()
    fast = outcome(lambda: validate_body(body, NOW, rules))

    def field_naming_path() -> list[Event]:
        payload = json.loads(body)
        refuse_nul(payload)
        return parse_events(payload, NOW, rules)

    slow = outcome(field_naming_path)
    if isinstance(slow, tuple):
        assert fast == slow
        return
    assert [e.event_id for e in fast.events] == [e.event_id for e in slow]
    assert fast.values == [encode_received(e, received_stamp(NOW)) for e in slow]  # byte for byte
    assert all(decode_event(v).received_at == NOW for v in fast.values)


@pytest.mark.parametrize(
    ("items", "field", "status", "code"),
    [
        ([], "batch", 400, "invalid_batch"),  # Segment's contract: 400
        ({"not": "a list"}, "events", 422, "invalid_batch"),
        ([1, 2, 3], "events", 413, "batch_too_large"),
    ],
)
def test_checked_batch_names_the_field(items: object, field: str, status: int, code: str) -> None:
    with pytest.raises(IngestError) as err:
        checked_batch(items, field, status=status if status != 413 else 422, max_items=2)
    assert (err.value.status, err.value.code) == (status, code)
    assert field in err.value.message


def test_checked_batch_passes_a_good_list() -> None:
    assert checked_batch([1, 2], "events", status=422, max_items=2) == [1, 2]
