"""Ingest's pure core: keys, rate limits, event-time sanity, batch validation, gzip limits, Segment mapping."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.apikeys import Scope, generate_key, hash_key, key_from_headers, parse_scopes
from services.ingest.body import inflate_gzip, nul_path
from services.ingest.errors import IngestError
from services.ingest.ratelimit import RateLimiter, retry_after_header
from services.ingest.segment import SegmentRules, account_of, corrected_time, profile_from_traits, to_event
from services.ingest.settings import DEFAULT_TRACK_EVENTS
from services.ingest.validation import OUT_OF_RANGE, EventRules, parse_events
from shared.events import decode_event, encode_event

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RULES = EventRules(32 * 1024, 2500, timedelta(days=1), timedelta(days=365), "reject")


def usage(event_id: str = "e1", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "usage",
        "action": "login",
        "event_id": event_id,
        "account_id": "a",
        "occurred_at": NOW.isoformat(),
        **extra,
    }


def test_a_key_is_stored_only_as_its_hash_and_has_a_listing_prefix() -> None:
    new = generate_key()
    assert new.secret_key.startswith(f"cw_{new.prefix}_") and len(new.secret_key) > 40
    assert new.key_hash == hash_key(new.secret_key) and new.secret_key not in new.key_hash
    assert generate_key().secret_key != new.secret_key


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer k1", None, "k1"),
        ("Basic " + base64.b64encode(b"k2:").decode(), None, "k2"),
        (None, "k3", "k3"),
        ("Basic !!!", None, None),
        ("Digest x", None, None),
        (None, None, None),
    ],
)
def test_the_key_comes_from_bearer_basic_or_x_api_key(
    authorization: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert key_from_headers(authorization, x_api_key) == expected


def test_unknown_scopes_are_refused() -> None:
    assert parse_scopes(["read", "events:write"]) == {Scope.READ, Scope.WRITE_EVENTS}
    with pytest.raises(ValueError, match="admin"):
        parse_scopes(["admin"])


def test_rate_limiter_allows_a_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.acquire("k", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("k", 0.0)
    assert wait == pytest.approx(0.5) and retry_after_header(wait) == "1"
    assert limiter.acquire("other", 0.0) == 0.0  # per key
    assert limiter.acquire("k", 0.5) == 0.0  # refilled


@pytest.mark.parametrize(
    ("occurred_at", "policy", "outcome"),
    [
        (NOW - timedelta(days=30), "reject", "ok"),
        (NOW + timedelta(days=2), "reject", "rejected"),
        (NOW - timedelta(days=400), "reject", "rejected"),
        (NOW + timedelta(days=2), "flag", "flagged"),
    ],
)
def test_event_time_sanity(occurred_at: datetime, policy: Any, outcome: str) -> None:
    rules = EventRules(32 * 1024, 2500, timedelta(days=1), timedelta(days=365), policy)
    payload = usage(occurred_at=occurred_at.isoformat())
    if outcome == "rejected":
        with pytest.raises(IngestError) as err:
            parse_events(payload, NOW, rules)
        assert err.value.fields[0]["path"] == "occurred_at" and err.value.fields[0]["type"] == OUT_OF_RANGE
        return
    (event,) = parse_events(payload, NOW, rules)
    assert event.received_at == NOW
    assert (event.flags or []) == ([OUT_OF_RANGE] if outcome == "flagged" else [])


def test_a_batch_with_bad_events_is_refused_whole_naming_each() -> None:
    batch = {"events": [usage("ok"), usage("bad", occurred_at="yesterday"), {"kind": "nope"}]}
    with pytest.raises(IngestError) as err:
        parse_events(batch, NOW, RULES)
    assert err.value.status == 422 and err.value.extra == {"accepted": 0, "rejected_indexes": [1, 2]}
    assert err.value.fields[0]["path"] == "events[1].occurred_at"
    assert err.value.fields[1]["path"] == "events[2]"


def test_an_oversized_event_is_named_and_too_many_events_is_413() -> None:
    big = usage("big", properties={"x": "y" * 40_000})
    with pytest.raises(IngestError) as err:
        parse_events({"events": [usage(), big]}, NOW, RULES)
    assert err.value.status == 413 and err.value.fields[0]["path"] == "events[1]"
    with pytest.raises(IngestError) as err:
        parse_events({"events": [usage(str(i)) for i in range(2501)]}, NOW, RULES)
    assert err.value.status == 413


def test_gzip_is_inflated_only_up_to_the_limit() -> None:
    assert inflate_gzip(gzip.compress(b"{}"), 10) == b"{}"
    with pytest.raises(IngestError) as err:
        inflate_gzip(gzip.compress(b" " * 10_000_000), 1000)
    assert err.value.status == 413
    with pytest.raises(IngestError) as err:
        inflate_gzip(b"not gzip", 1000)
    assert err.value.status == 400


def test_nul_characters_are_found_by_path() -> None:
    assert nul_path({"events": [{"a": "ok"}, {"b": "x\x00"}]}) == "events[1].b"
    assert nul_path({"a": ["fine"]}) is None


SEGMENT = SegmentRules(("context.groupId",), DEFAULT_TRACK_EVENTS)


def test_segment_clock_skew_is_taken_out() -> None:
    received = NOW
    message = {"timestamp": (NOW + timedelta(hours=2) - timedelta(minutes=5)).isoformat()}
    sent_at = (NOW + timedelta(hours=2)).isoformat()  # the device's clock is two hours fast
    assert corrected_time(message, sent_at, received) == NOW - timedelta(minutes=5)
    assert corrected_time({}, sent_at, received) == received
    assert corrected_time({"timestamp": "2026-11-20T10:00:00Z"}, None, received) == datetime(
        2026, 11, 20, 10, tzinfo=UTC
    )


def test_segment_track_names_map_to_tickets_feedback_and_usage() -> None:
    def mapped(event: str, props: dict[str, Any]) -> Any:
        message = {"event": event, "messageId": "m", "userId": "u", "properties": props}
        return to_event(message, "track", account_id="a", occurred_at=NOW, received_at=NOW, rules=SEGMENT)

    ticket = mapped("Ticket Opened", {"ticket_id": "T1", "priority": "High"})
    assert (ticket.kind, ticket.action, ticket.priority) == ("ticket", "opened", "high")
    nps = mapped("NPS Submitted", {"nps": 4, "comment": "meh"})
    assert (nps.kind, nps.nps, nps.comment) == ("feedback", 4, "meh")
    usage_event = mapped("Dashboard Viewed", {"quantity": 2})
    assert (usage_event.kind, usage_event.feature, usage_event.quantity) == ("usage", "Dashboard Viewed", 2)
    assert account_of({"context": {"groupId": 42}}, SEGMENT.account_paths) == "42"
    assert account_of({"context": {}}, SEGMENT.account_paths) is None


def test_segment_calls_name_their_sdk_as_the_source() -> None:
    def source(context: Any) -> str | None:
        message = {"event": "Login", "messageId": "m", "userId": "u", "context": context}
        event = to_event(message, "track", account_id="a", occurred_at=NOW, received_at=NOW, rules=SEGMENT)
        return event.source

    assert source({"library": {"name": "analytics-python", "version": "2.3.0"}}) == "analytics-python"
    assert source({"library": {"name": "  "}}) is None
    assert source({"library": "not a dict"}) is None
    assert source(None) is None


def test_group_traits_update_what_is_known_of_the_account() -> None:
    known = {"account_id": "a", "name": "Acme", "arr": 1000.0}
    profile = profile_from_traits(
        "a", {"plan": "pro", "csm_email": "c@x.io", "createdAt": "2024-01-02T00:00:00Z"}, known
    )
    assert (profile.name, profile.arr, profile.plan) == ("Acme", 1000.0, "pro")
    assert profile.csm is not None and profile.csm.email == "c@x.io"
    assert str(profile.created_date) == "2024-01-02"
    assert profile_from_traits("b", {}, None).name == "b"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
field_values = st.one_of(json_values, st.sampled_from(["usage", "ticket", "login", "opened", NOW.isoformat(), "a"]))
event_like = st.fixed_dictionaries(
    {"kind": st.sampled_from(["usage", "ticket", "feedback", "lifecycle", "x"])},
    optional={k: field_values for k in ("action", "event_id", "account_id", "occurred_at", "ticket_id", "nps", "csat")},
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, event_like, st.fixed_dictionaries({"events": st.lists(event_like, max_size=5)})))
def test_any_payload_is_either_valid_events_or_a_4xx_naming_fields(payload: Any) -> None:
    try:
        events = parse_events(payload, NOW, RULES)
    except IngestError as err:
        assert 400 <= err.status < 500 and err.fields
        return
    for event in events:
        assert decode_event(encode_event(event)) == event  # what ingest writes, the scorer reads back the same


segment_message = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "page", "group", "identify", "alias", "x"]),
        "messageId": field_values,
        "event": st.sampled_from([*DEFAULT_TRACK_EVENTS, "Other"]) | json_values,
        "timestamp": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat) | json_values,
        "context": st.fixed_dictionaries({}, optional={"groupId": field_values}) | json_values,
        "properties": json_values,
        "traits": json_values,
        "groupId": field_values,
        "userId": field_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(segment_message | json_values, min_size=1, max_size=5), json_values)
def test_any_segment_batch_maps_to_events_skips_or_named_errors(messages: list[Any], sent_at: Any) -> None:
    from services.ingest.segment_routes import map_batch
    from services.ingest.settings import IngestSettings

    out = map_batch(messages, None, {"sentAt": sent_at}, IngestSettings(), NOW)
    assert len(out.events) + len(out.skipped) + len(out.groups) + len({e["index"] for e in out.errors}) >= 1
    assert all(e["path"].startswith("batch[") for e in out.errors)


def test_the_last_event_of_each_key_and_source_is_recorded_with_bounded_series() -> None:
    from prometheus_client import REGISTRY

    from services.ingest import metrics

    def last(key: str, source: str) -> float | None:
        labels = {"key": key, "source": source}
        return REGISTRY.get_sample_value("churnwatch_ingest_last_event_timestamp_seconds", labels)

    metrics.record_senders("key:t1", ["web", None, "web"], now=100.0)
    assert (last("key:t1", "web"), last("key:t1", "unset")) == (100.0, 100.0)
    for i in range(metrics.MAX_SENDERS):
        metrics.record_senders("key:t2", [f"sdk-{i}"], now=200.0)
    assert last("key:t2", "other") == 200.0  # the pairs past the bound share one series
    assert len(metrics._senders) <= metrics.MAX_SENDERS + 2
