"""Backfill inputs on disk (tmp files, no Kafka): JSON Lines, gzip and CSV read alike; rejects name file, line
and field; a file that is not the schema stops with one message; the order scan."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.backfill.reader import OrderedRead, ReadJob
from services.backfill.reading import (
    CsvOptions,
    InputSpec,
    NotTheSchema,
    OrderBroken,
    RejectLog,
    event_records,
    open_input,
    probe,
    profile_records,
    scan,
)
from services.backfill.sources import EventParser, event_rules
from shared.events import decode_event

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PARSER_RULES = event_rules(max_event_bytes=4096, max_future=timedelta(days=1), max_age=None)
PARSER = EventParser(PARSER_RULES, lambda: NOW)


def event(n: int, day: int = 1, **fields: Any) -> dict[str, Any]:
    base = {"kind": "usage", "action": "login", "event_id": f"e{n}", "account_id": f"a{n % 3}"}
    return {**base, "occurred_at": f"2025-03-{day:02d}T10:00:00Z", **fields}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _ignore(_: int) -> None:
    pass


def read_all(spec: InputSpec, rejects: RejectLog, *, expect_order: bool = False) -> list[Any]:
    with open_input(spec, PARSER) as opened:
        records = event_records(opened, rejects, expect_order=expect_order, stopping=bool, on_read=_ignore)
        out = list(records)
    rejects.close()
    return out


def rejected(rejects: RejectLog) -> list[dict[str, Any]]:
    return [json.loads(line) for line in rejects.path.read_text().splitlines()]


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_jsonl_and_gzip_read_alike_and_bad_lines_are_rejects_naming_line_and_field(tmp_path: Path, name: str) -> None:
    path = write_jsonl(tmp_path / name, [event(1), "", "{broken", event(2, user_id=""), event(3, day=2)])
    rejects = RejectLog(tmp_path / "rejects.jsonl")
    records = read_all(InputSpec(path, 0, None), rejects)
    assert [(r[2], decode_event(r[4]).event_id) for r in records] == [(1, "e1"), (5, "e3")]
    assert all(r[3] == decode_event(r[4]).account_id.encode() and r[1] == 0 for r in records)
    assert rejects.count == 2
    bad = rejected(rejects)
    assert [(b["file"], b["line"], b["path"]) for b in bad] == [(str(path), 3, ""), (str(path), 4, "user_id")]
    assert "not valid JSON" in bad[0]["reason"] and "at least 1 character" in bad[1]["reason"]


def test_csv_rows_are_mapped_with_constants_and_rejects_name_the_column(tmp_path: Path) -> None:
    path = tmp_path / "logins.csv.gz"
    rows = "acct,ts,id\na1,2025-03-01T10:00:00Z,x1\na2,not-a-time,x2\na3,2025-03-02T10:00:00Z,x3,extra\n"
    path.write_bytes(gzip.compress(rows.encode()))
    columns = {"account_id": "acct", "occurred_at": "ts", "event_id": "id"}
    options = CsvOptions(columns, {"kind": "usage", "action": "login"})
    rejects = RejectLog(tmp_path / "rejects.jsonl")
    records = read_all(InputSpec(path, 0, options), rejects)
    assert [(r[2], decode_event(r[4]).account_id) for r in records] == [(2, "a1")]
    bad = rejected(rejects)
    assert [(b["line"], b["path"]) for b in bad] == [(3, "occurred_at"), (4, "")]
    assert "(column 'ts')" in bad[0]["reason"]
    assert "1 cells more than the header" in bad[1]["reason"]


def test_a_csv_mapping_naming_absent_columns_stops_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("acct,when\na1,2025-03-01T10:00:00Z\n")
    spec = InputSpec(path, 0, CsvOptions({"account_id": "acct", "occurred_at": "ts"}))
    with pytest.raises(NotTheSchema, match=r"names column\(s\) 'ts', which the header does not have"):
        probe(spec, PARSER, 50)


def test_a_file_whose_first_lines_are_all_rejected_is_not_the_schema(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "orders.jsonl", [{"order": i, "total": 3} for i in range(80)] + [event(1)])
    with pytest.raises(NotTheSchema) as stop:
        probe(InputSpec(path, 0, None), PARSER, 50)
    message = str(stop.value)
    assert "first 50 line(s) were all rejected" in message and "line 1:" in message
    assert "nothing was sent" in message


def test_one_good_line_among_the_first_is_enough(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mostly-bad.jsonl", ["{"] * 30 + [event(1)] + ["{"] * 30)
    probe(InputSpec(path, 0, None), PARSER, 50)


def test_the_scan_finds_order_and_counts_lines(tmp_path: Path) -> None:
    in_order = write_jsonl(tmp_path / "a.jsonl", [event(1, 1), "{junk", event(2, 1), event(3, 2)])
    found = scan(InputSpec(in_order, 0, None), PARSER, lambda _: None)
    assert (found.lines, found.in_order) == (4, True)
    unsorted = write_jsonl(tmp_path / "b.jsonl", [event(1, 2), event(2, 1)])
    assert scan(InputSpec(unsorted, 0, None), PARSER, lambda _: None).first_step_back == 2


def test_a_supposedly_sorted_input_that_goes_back_stops_the_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [event(1, 2), event(2, 1)])
    with pytest.raises(OrderBroken, match="line 2 goes back in time"):
        read_all(InputSpec(path, 0, None), RejectLog(tmp_path / "r.jsonl"), expect_order=True)


def test_profiles_from_jsonl_with_rejects(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "accounts.jsonl", [{"account_id": "a1", "name": "Acme"}, {"account_id": "a 2"}])
    rejects = RejectLog(tmp_path / "r.jsonl")
    with open_input(InputSpec(path, 0, None, profiles=True), PARSER) as opened:
        profiles = list(profile_records(opened, rejects))
    rejects.close()
    assert [p.account_id for p in profiles] == ["a1"]
    assert [(b["line"], b["path"]) for b in rejected(rejects)] == [(2, "account_id")]


def test_inputs_in_order_stream_unsorted_ones_are_sorted_and_all_merge_by_time(tmp_path: Path) -> None:
    in_order = write_jsonl(tmp_path / "a.jsonl", [event(n, day) for n, day in enumerate([1, 3, 3, 9], 1)])
    shuffled = write_jsonl(tmp_path / "b.jsonl.gz", [event(n, day) for n, day in enumerate([8, 2, 3, 1, 7], 10)])
    specs = [InputSpec(in_order, 0, None), InputSpec(shuffled, 1, None)]
    scans = {s.index: scan(s, PARSER, lambda _: None) for s in specs}
    assert [scans[0].in_order, scans[1].in_order] == [True, False]
    job = ReadJob(specs, PARSER_RULES, tmp_path / "r.jsonl", tmp_path, run_events=2, fan_in=2)
    read = OrderedRead(job, PARSER, RejectLog(job.rejects), scans)
    out = [(decode_event(r[4]).occurred_at.day, r[1], r[2]) for r in read]
    assert out == [(1, 0, 1), (1, 1, 4), (2, 1, 2), (3, 0, 2), (3, 0, 3), (3, 1, 3), (7, 1, 5), (8, 1, 1), (9, 0, 4)]
    assert read.last_lines() == {str(in_order): 4, str(shuffled): 5}
    assert read.read == 9
    again = OrderedRead(job, PARSER, RejectLog(tmp_path / "again.jsonl"), scans)
    chunks = list(again.chunks(4))  # the stream in lists, as the reader process sends it
    assert [len(c) for c in chunks] == [4, 4, 1]
    assert [(decode_event(r[4]).occurred_at.day, r[1], r[2]) for c in chunks for r in c] == out
