"""JSON Lines a block at a time (no Kafka): blocks hold whole numbered lines; a block's scan and validation say
exactly what the line-by-line reading says; the worker processes give the same records and rejects."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.backfill.blocks import LineBlock, numbered_lines, scan_block, validate_block
from services.backfill.ordering import OrderCheck, line_time_us
from services.backfill.reader import BlockWorkers, OrderedRead, ReadJob
from services.backfill.reading import InputSpec, RejectLog, scan
from services.backfill.sources import EventParser, InputFile, event_rules

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RULES = event_rules(max_event_bytes=4096, max_future=timedelta(days=1), max_age=None)


def parser() -> EventParser:
    return EventParser(RULES, lambda: NOW)


def login(n: int, at: str = "2025-03-01T10:00:00+00:00", **fields: Any) -> bytes:
    event = {"kind": "usage", "action": "login", "event_id": f"e{n}", "account_id": f"a{n % 3}", "occurred_at": at}
    return json.dumps(event | fields).encode()


def day(d: int, hour: int = 10) -> str:
    return f"2025-03-{d:02d}T{hour:02d}:00:00+00:00"


def minute(n: int) -> str:
    return (datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=n)).isoformat()


def lines_of(block: LineBlock) -> list[tuple[int, bytes]]:
    return list(zip(*numbered_lines(block), strict=True))


@pytest.mark.parametrize("text", [b"a\n\nb\r\n  \nc", b"a\nb\n", b"\n\n", b"x"])
def test_a_block_has_the_numbered_non_blank_lines_a_line_by_line_read_has(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(text)
    with InputFile(path) as f:
        expected = list(f.lines())
    assert lines_of(LineBlock(0, 1, text)) == expected


@pytest.mark.parametrize("name", ["f.jsonl", "f.jsonl.gz"])
def test_blocks_end_at_line_ends_and_number_lines_on(tmp_path: Path, name: str) -> None:
    text = b"".join(login(n) + b"\n" for n in range(300)) + b"\n" + b'{"long": "' + b"x" * 5000 + b'"}'
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    with InputFile(path) as f:
        expected = list(f.lines())
    with InputFile(path) as f:
        blocks = [LineBlock(0, first, data) for first, data in f.blocks(size=1000)]
    assert all(b.data.endswith(b"\n") for b in blocks[:-1]) and len(blocks) > 30
    assert [line for block in blocks for line in lines_of(block)] == expected


def _scan_line_by_line(lines: list[bytes]) -> tuple[bool, int | None]:
    check = OrderCheck()
    for number, line in enumerate(lines, 1):
        if line.strip():
            check.observe(line_time_us(line), number)
    return check.in_order, check.first_step_back


@pytest.mark.parametrize(
    "lines",
    [
        [login(1, day(1)), login(2, day(1)), login(3, day(2))],  # the usual: in order
        [login(1, day(2)), login(2, day(1))],  # a step back
        [login(1, day(1)), b"", login(2, day(2))],  # a blank line
        [login(1, day(3)), b"{broken", login(2, day(2))],  # a line without a time
        [login(1, "2025-03-01T10:00:00Z"), login(2, day(1, 9))],  # shapes differ: text order is not time order
        [login(1, "2025-03-01T12:00:00+02:00"), login(2, day(1, 11))],  # offsets differ
        [login(1, day(2), properties={"occurred_at": day(1)}), login(2, day(3))],  # a nested occurred_at
        [login(1, "2025-13-01T10:00:00+00:00"), login(2, day(1)), login(3, day(2))],  # month 13: no time
        [login(1, "2025-03-01 10:00:00+00:00"), login(2, day(1, 9))],  # a space for the T
    ],
)
def test_a_blocks_scan_says_what_the_line_by_line_scan_says(lines: list[bytes]) -> None:
    check = OrderCheck()
    count = scan_block(LineBlock(0, 1, b"\n".join(lines) + b"\n"), check)
    assert (check.in_order, check.first_step_back) == _scan_line_by_line(lines)
    assert count == sum(1 for line in lines if line.strip())


def test_the_scan_compares_across_blocks() -> None:
    check = OrderCheck()
    scan_block(LineBlock(0, 1, login(1, day(1)) + b"\n" + login(2, day(5)) + b"\n"), check)
    scan_block(LineBlock(0, 3, login(3, day(4)) + b"\n" + login(4, day(6)) + b"\n"), check)
    assert check.first_step_back == 3


def test_order_checks_of_consecutive_parts_join_into_the_check_of_the_whole() -> None:
    times = [5, 7, 7, 9, 8, 12, 3, 14]
    for cut in range(len(times) + 1):
        whole, first, second = OrderCheck(), OrderCheck(), OrderCheck()
        for line, at in enumerate(times, 1):
            whole.observe(at, line)
            (first if line <= cut else second).observe(at, line)
        if first.follow(second):
            assert (first.first_step_back, first.latest, first.earliest) == (whole.first_step_back, 14, 3)
        else:  # the second part goes back before the first one's latest: the first line that does is rescanned
            assert first.in_order and second.earliest is not None and first.latest is not None
            assert second.earliest < first.latest


def test_a_validated_block_is_the_line_by_line_outcome() -> None:
    raw = [login(1, day(2)), b"{not json", b"", login(2, day(1), user_id=""), login(3, day(3)), login(4, day(1))]
    block = LineBlock(4, 10, b"\n".join(raw))  # the last line without its newline
    result = validate_block(parser(), block)
    one_by_one = parser()
    expected = [(n, one_by_one.line(line)) for n, line in lines_of(block)]
    good = [(n, r) for n, r in expected if not isinstance(r, dict)]
    assert [(r[2], r[4]) for r in result.records] == [(n, r[1]) for n, r in good]
    assert all(r[1] == 4 and r[3] == json.loads(r[4])["account_id"].encode() for r in result.records)
    assert result.rejects == [(n, r["path"], r["reason"]) for n, r in expected if isinstance(r, dict)]
    assert (result.lines, result.last_line, result.step_back) == (5, 15, 15)


def test_worker_processes_give_what_the_reader_process_gives(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    text = b"".join(login(n, minute(n)) + b"\n" for n in range(2000))
    path.write_bytes(gzip.compress(text.replace(b'"e77"', b'""').replace(login(901, minute(901)), b"{")))
    spec = InputSpec(path, 0, None)
    scans = {0: scan(spec, parser(), lambda _: None)}
    assert scans[0].in_order
    job = ReadJob([spec], RULES, tmp_path / "r.jsonl", tmp_path, run_events=100, fan_in=4)
    alone = RejectLog(tmp_path / "alone.jsonl")
    expected = list(OrderedRead(job, parser(), alone, scans))
    here = OrderedRead(job, parser(), RejectLog(tmp_path / "here.jsonl"), scans)
    assert [record for chunk in here.chunks(500) for record in chunk] == expected
    workers = BlockWorkers(RULES, 2)
    try:
        pooled = RejectLog(tmp_path / "pooled.jsonl")
        read = OrderedRead(job, parser(), pooled, scans, workers)
        records = [record for chunk in read.chunks(500) for record in chunk]
    finally:
        workers.close()
    alone.close()
    pooled.close()
    assert len(expected) == 1998 and [r[:4] for r in records] == [r[:4] for r in expected]
    unstamped = [r[4].split(b",", 1) for r in records]  # the workers stamp received_at by the wall clock
    assert [r[1] for r in unstamped] == [r[4].split(b",", 1)[1] for r in expected]
    assert all(r[0].startswith(b'{"received_at":') for r in unstamped)
    assert pooled.path.read_text() == alone.path.read_text() and pooled.count == 2
    assert read.read == 2000 and read.last_lines() == {str(path): 2000}


def test_worker_processes_scan_as_the_reader_process_does(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    times = [minute(n) for n in range(3000)]
    times[2500] = minute(100)  # a step back in a later block than the one it goes back to
    path.write_bytes(b"".join(login(n, at) + b"\n" for n, at in enumerate(times)))
    spec = InputSpec(path, 0, None)
    expected = scan(spec, parser(), lambda _: None)
    workers = BlockWorkers(RULES, 2)
    try:
        found = scan(spec, parser(), lambda _: None, workers.scanned)
    finally:
        workers.close()
    assert found == expected and (found.in_order, found.first_step_back, found.lines) == (False, 2501, 3000)
