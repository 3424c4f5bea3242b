"""Backfill ordering, pure: the cheap time read agrees with the schema, the order check, and the external sort
(bounded runs spilled and merged) returns every record, sorted and stable for equal times."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.backfill.ordering import OrderCheck, line_time_us, merge_by_time, parse_time_us, sort_by_time
from services.backfill.sources import EventRecord, time_us
from shared.events import decode_event


def record(at: int, line: int, source: int = 0) -> EventRecord:
    return at, source, line, b"a1", f"v{source}:{line}".encode()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"occurred_at": "2025-01-02T03:04:05+02:00", "kind": "usage"}',
        b'{"occurred_at": "2025-01-02T01:04:05Z"}',
        b'{"occurred_at":"2025-01-02 01:04:05.000+00:00"}',
        b'{"occurred_at": "2025-01-02T01:04:05\\u002b00:00"}',  # escaped: read by decoding the line
        b'{"properties": {"occurred_at": "1999-01-01T00:00:00Z"}, "occurred_at": "2025-01-02T01:04:05Z"}',
        b'{"occurred_at": 1735780245}',  # a unix time, as pydantic reads it
    ],
)
def test_the_cheap_time_read_is_the_instant_the_schema_reads(raw: bytes) -> None:
    full = b'{"kind": "usage", "action": "login", "event_id": "e", "account_id": "a", ' + raw[1:]
    assert line_time_us(raw) == time_us(decode_event(full).occurred_at)


@pytest.mark.parametrize("raw", [b"not json", b'{"occurred_at": "2025-01-02T01:04:05"}', b"[1]", b'{"x": 1}'])
def test_a_time_the_schema_would_refuse_is_none(raw: bytes) -> None:
    assert line_time_us(raw) is None


def test_parse_time_us_takes_what_pydantic_takes() -> None:
    assert parse_time_us("2025-01-02T01:04:05Z") == parse_time_us("2025-01-02T02:04:05+01:00")
    assert parse_time_us(None) is None
    assert parse_time_us("2025-13-45T00:00:00Z") is None


def test_order_check_notes_the_first_step_back_and_ignores_unreadable_times() -> None:
    check = OrderCheck()
    for line, at in enumerate([1, 1, None, 3, 2, 5, 0], 1):
        check.observe(at, line)
    assert not check.in_order
    assert check.first_step_back == 5
    sorted_check = OrderCheck()
    for line, at in enumerate([1, None, 1, 2], 1):
        sorted_check.observe(at, line)
    assert sorted_check.in_order


def test_external_sort_with_tiny_runs_is_sorted_complete_and_stable(tmp_path: Path) -> None:
    rng = random.Random(3)
    records = [record(rng.randrange(50), line) for line in range(1, 2001)]
    out = list(sort_by_time(records, run_events=37, directory=tmp_path, fan_in=4))
    assert out == sorted(records)
    assert sorted(out) == sorted(records) and len(out) == len(records)
    for earlier, later in itertools.pairwise(out):
        if earlier[0] == later[0]:
            assert earlier[2] < later[2]  # equal times keep their line order
    assert list(tmp_path.iterdir()), "tiny runs must have been spilled"


def test_external_sort_that_fits_one_run_writes_nothing(tmp_path: Path) -> None:
    records = [record(3, 1), record(1, 2), record(2, 3)]
    assert [r[0] for r in sort_by_time(records, run_events=10, directory=tmp_path)] == [1, 2, 3]
    assert not list(tmp_path.iterdir())


@settings(max_examples=40, deadline=None)
@given(times=st.lists(st.integers(0, 20), max_size=300), run=st.integers(1, 40), fan_in=st.integers(2, 5))
def test_external_sort_equals_an_in_memory_sort(
    times: list[int], run: int, fan_in: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    records = [record(at, line) for line, at in enumerate(times, 1)]
    directory = tmp_path_factory.mktemp("runs")
    assert list(sort_by_time(records, run_events=run, directory=directory, fan_in=fan_in)) == sorted(records)


def test_inputs_merge_by_time_then_input_then_line() -> None:
    first = [record(1, 1, 0), record(5, 2, 0), record(5, 3, 0)]
    second = [record(2, 1, 1), record(5, 2, 1)]
    merged = list(merge_by_time([iter(first), iter(second)]))
    assert [(r[0], r[1], r[2]) for r in merged] == [(1, 0, 1), (2, 1, 1), (5, 0, 2), (5, 0, 3), (5, 1, 2)]
    assert list(merge_by_time([iter(first)])) == first
