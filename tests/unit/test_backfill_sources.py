"""Backfill parsing, pure: a line or a mapped CSV row becomes the event ingest would accept (with its
``received_at``), or the first fault with its field path; and the CSV mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.backfill.mapping import EVENT_FIELDS, PROFILE_FIELDS, ColumnMapping, MappingError, parse_pairs
from services.backfill.sources import EventParser, event_rules, profile_from_item, profile_from_line, time_us
from services.ingest.validation import encode_received, received_stamp
from shared.events import decode_event

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def parser(max_age_days: int | None = None) -> EventParser:
    age = timedelta(days=max_age_days) if max_age_days is not None else None
    return EventParser(event_rules(max_event_bytes=2048, max_future=timedelta(days=1), max_age=age), lambda: NOW)


def line(**fields: Any) -> bytes:
    base = {"kind": "usage", "action": "login", "event_id": "e1", "account_id": "a1"}
    base["occurred_at"] = "2025-01-02T03:04:05+02:00"
    return json.dumps({**base, **fields}).encode()


def test_a_good_line_is_ingests_event_with_received_at_stamped() -> None:
    result = parser().line(line())
    assert not isinstance(result, dict)
    event, value = result
    assert event.occurred_at == datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert value == encode_received(event, received_stamp(NOW))
    assert decode_event(value).received_at == NOW


def test_a_client_received_at_is_replaced_by_the_loaders() -> None:
    result = parser().line(line(received_at="2020-01-01T00:00:00Z"))
    assert not isinstance(result, dict)
    assert decode_event(result[1]).received_at == NOW


@pytest.mark.parametrize(
    ("raw", "path", "reason_part"),
    [
        (b"not json", "", "not valid JSON"),
        (line(event_id=None), "event_id", "valid string"),
        (line(kind="usage", action="jumped"), "action", "Input should be"),
        (line(occurred_at="yesterday"), "occurred_at", "datetime"),
        (line(occurred_at="2026-11-25T00:00:00Z"), "occurred_at", "in the future"),
        (line(properties={"note": "x" * 3000}), "", "larger than 2048 bytes"),
        (line(properties={"note": "a\u0000b"}), "properties.note", "NUL"),
        (b'{"events": [' + line() + b"]}", "", "one event, not a batch"),
        (b"[1, 2]", "", "Input should be"),
    ],
)
def test_a_bad_line_names_its_field_and_reason(raw: bytes, path: str, reason_part: str) -> None:
    result = parser().line(raw)
    assert isinstance(result, dict), result
    assert result["path"] == path
    assert reason_part in result["reason"]


def test_no_age_limit_by_default_and_max_age_days_when_asked() -> None:
    old = line(occurred_at="2019-05-01T00:00:00Z")
    assert not isinstance(parser().line(old), dict)
    refused = parser(max_age_days=365).line(old)
    assert isinstance(refused, dict)
    assert refused["path"] == "occurred_at"
    assert "365 days in the past" in refused["reason"]


def test_a_mapped_csv_row_is_validated_as_ingest_validates_items() -> None:
    mapping = ColumnMapping.for_header(
        ["acct", "ts", "id", "feature"],
        {"account_id": "acct", "occurred_at": "ts", "event_id": "id"},
        {"kind": "usage", "action": "feature_used"},
        EVENT_FIELDS,
    )
    row = {"acct": "a1", "ts": "2025-03-01T10:00:00Z", "id": "x1", "feature": "reports"}
    result = parser().item(mapping.item(row))
    assert not isinstance(result, dict)
    event, value = result
    assert (event.kind, event.account_id, event.event_id) == ("usage", "a1", "x1")
    assert getattr(event, "feature", None) == "reports"  # a column named like a field maps by itself
    assert decode_event(value).received_at == NOW


def test_mapping_builds_nested_fields_and_leaves_empty_cells_out() -> None:
    mapping = ColumnMapping.for_header(
        ["id", "name", "owner", "plan_col"], {"account_id": "id", "csm.email": "owner", "plan": "plan_col"}, {},
        PROFILE_FIELDS,
    )  # fmt: skip
    item = mapping.item({"id": "a1", "name": "Acme", "owner": "ana@example.com", "plan_col": ""})
    assert item == {"account_id": "a1", "name": "Acme", "csm": {"email": "ana@example.com"}}
    profile = profile_from_item(item)
    assert not isinstance(profile, dict)
    assert profile.csm is not None and profile.csm.email == "ana@example.com"
    assert mapping.column_of("csm.email") == "owner"
    assert mapping.column_of("csm") == "owner"


def test_missing_columns_are_the_mapped_ones_the_header_lacks() -> None:
    mapping = ColumnMapping.for_header(["acct"], {"account_id": "acct", "occurred_at": "ts"}, {}, EVENT_FIELDS)
    assert mapping.missing_columns(["acct"]) == ["ts"]


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [(["account_id"], "field=value"), (["acount_id=acct"], "is not a field"), (["=acct"], "field=value")],
)
def test_a_mapping_option_written_wrong_is_refused(pairs: list[str], problem: str) -> None:
    with pytest.raises(MappingError, match=problem):
        parse_pairs(pairs, EVENT_FIELDS, "--map")


def test_properties_may_be_mapped_by_dotted_name() -> None:
    assert parse_pairs(["properties.plan=p"], EVENT_FIELDS, "--map") == {"properties.plan": "p"}


def test_a_profile_line_or_its_first_fault() -> None:
    good = profile_from_line(b'{"account_id": "a1", "name": "Acme", "arr": 1200}')
    assert not isinstance(good, dict) and good.arr == 1200
    bad = profile_from_line(b'{"account_id": "a1", "name": "Acme", "arr": -5}')
    assert isinstance(bad, dict) and bad["path"] == "arr"


def test_time_us_is_exact_microseconds_since_the_epoch() -> None:
    assert time_us(datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=UTC)) == 1_000_007
    assert time_us(datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)) == -1_000_000
