"""JSON Lines a block at a time, pure: a block's lines validated together, and its event times scanned at once.

A block is about a megabyte of whole lines with the number of its first line. Validating one (each line by
``EventParser.line``: one pydantic pass over its bytes, ingest's rules) gives a ``BlockResult`` of ready records
and rejects, a unit of work that travels between processes in one piece (reader.py's workers). Validating a
whole block as one JSON array was measured too and is no cheaper: pydantic's per-event work dominates.

The order scan reads a block's ``occurred_at`` values with one regular expression and compares them as text
when every line has exactly one, in the same fixed ISO 8601 shape with the same UTC offset: then text order
is time order. Any other block is scanned line by line (``line_time_us``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.backfill.ordering import OrderCheck, line_time_us, parse_time_us
from services.backfill.sources import EventParser, EventRecord, time_us

_KEY = b'"occurred_at"'
# an occurred_at in one fixed shape: seconds, an optional fraction, Z or an offset
_USUAL_TIME = re.compile(rb'"occurred_at"\s*:\s*"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d))"')


@dataclass(frozen=True)
class LineBlock:
    input_index: int
    first_line: int  # the number of the block's first physical line
    data: bytes  # whole lines; only the file's last line may lack its newline


@dataclass(frozen=True)
class BlockResult:
    records: list[EventRecord]  # in line order
    rejects: list[tuple[int, str, str]]  # (line, field path, reason)
    lines: int  # non-blank lines
    last_line: int  # the number of the last non-blank line, 0 if none
    step_back: int | None  # the first line whose event time is before an earlier line's in this block


def numbered_lines(block: LineBlock) -> tuple[list[int], list[bytes]]:
    """The block's non-blank lines and their numbers; each line with its newline, as read line by line."""
    pieces = block.data.split(b"\n")
    last = pieces.pop()  # after the final newline: b"", unless the file's last line has no newline
    lines = [piece + b"\n" for piece in pieces]
    if last:
        lines.append(last)
    first = block.first_line
    kept = [line for line in lines if line.strip()]
    if len(kept) == len(lines):
        return list(range(first, first + len(lines))), lines
    return [first + n for n, line in enumerate(lines) if line.strip()], kept


def validate_block(parser: EventParser, block: LineBlock) -> BlockResult:
    """The block's good events as records (time, input, line, key, value) and its bad lines as rejects."""
    numbers, lines = numbered_lines(block)
    records: list[EventRecord] = []
    rejects: list[tuple[int, str, str]] = []
    index, latest, step_back = block.input_index, -(2**63), None
    for number, line in zip(numbers, lines, strict=True):
        result = parser.line(line)  # one at a time: holding a block's events at once costs more (GC)
        if isinstance(result, dict):
            rejects.append((number, result["path"], result["reason"]))
            continue
        event, value = result
        at = time_us(event.occurred_at)
        if at < latest and step_back is None:
            step_back = number
        latest = max(latest, at)
        records.append((at, index, number, event.account_id.encode(), value))
    return BlockResult(records, rejects, len(lines), numbers[-1] if numbers else 0, step_back)


def scan_block(block: LineBlock, check: OrderCheck) -> int:
    """Feeds the block's event times to ``check`` (as ``line_time_us`` reads them); returns its non-blank lines."""
    lines = block.data.split(b"\n")
    if not lines[-1]:  # after the final newline
        lines.pop()
    times = _USUAL_TIME.findall(block.data)
    usual = (
        len(times) == len(lines)  # and with the next line, one time per line (a blank line has none)
        and all(line.count(_KEY) == 1 for line in lines)
        and len({(len(t), t[-6:] if t[-1:] != b"Z" else b"Z") for t in times}) == 1
        and sorted(times) == times  # else a step back somewhere: the lines say where
    )
    first = parse_time_us(times[0].decode()) if usual else None
    last = parse_time_us(times[-1].decode()) if usual else None
    if first is None or last is None:  # not usual, or not a real date (month 13), which the schema refuses
        return _scan_lines(block, check)
    check.observe(first, block.first_line)
    check.observe(last, block.first_line + len(lines) - 1)
    return len(lines)


def block_order(block: LineBlock) -> tuple[int, OrderCheck]:
    """The block's non-blank lines and the order check of its times alone (``OrderCheck.follow`` joins them)."""
    check = OrderCheck()
    return scan_block(block, check), check


def _scan_lines(block: LineBlock, check: OrderCheck) -> int:
    numbers, lines = numbered_lines(block)
    for number, line in zip(numbers, lines, strict=True):
        check.observe(line_time_us(line), number)
    return len(lines)
