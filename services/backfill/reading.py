"""Inputs as streams: open a file (its CSV header checked), probe its first lines, scan its order, read it.

Every bad line goes to the ``RejectLog`` with file, line, field path and reason, and reading goes on; a file
that is not the schema at all (a mapping naming absent columns, or every one of its first lines rejected)
raises ``NotTheSchema`` while probing, before anything is sent.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from services.backfill.blocks import BlockResult, LineBlock, block_order, scan_block, validate_block
from services.backfill.mapping import EVENT_FIELDS, PROFILE_FIELDS, ColumnMapping
from services.backfill.ordering import OrderCheck, line_time_us, parse_time_us
from services.backfill.sources import (
    EventParser,
    EventRecord,
    InputFile,
    Reject,
    profile_from_item,
    profile_from_line,
    time_us,
)
from shared.accounts import AccountProfile
from shared.events import Event


class NotTheSchema(Exception):
    """The one message a run stops with when an input cannot be what it claims; nothing was sent."""


class OrderBroken(Exception):
    """An input the order scan found sorted went back in time while being read (it changed under us)."""


@dataclass(frozen=True)
class CsvOptions:
    columns: dict[str, str] = field(default_factory=dict)  # --map field=column
    constants: dict[str, str] = field(default_factory=dict)  # --kind, --action, --const field=value


@dataclass(frozen=True)
class InputSpec:
    path: Path
    index: int
    csv: CsvOptions | None  # None: JSON Lines
    profiles: bool = False  # account profiles rather than events


class RejectLog:
    """Rejects appended to one file as JSON lines, counted; the file is made at the first reject (a run removes
    the previous run's file when it starts)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._out: IO[str] | None = None

    def add(self, reject: Reject) -> None:
        if self._out is None:
            self._out = self.path.open("a", encoding="utf-8")
        self.count += 1
        self._out.write(json.dumps(reject.as_json()) + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


# a row -> (event, its bytes for Kafka) or an AccountProfile, or the first fault (a FieldError dict)
Parse = Callable[[Any], Any]


@dataclass
class OpenInput:
    spec: InputSpec
    file: InputFile
    rows: Iterator[tuple[int, Any]]
    parse: Parse
    time_of: Callable[[Any], int | None]  # the cheap order-scan read of a row's event time
    parser: EventParser
    last_line: int = 0

    @property
    def is_jsonl(self) -> bool:
        return self.spec.csv is None and not self.spec.profiles

    def blocks(self) -> Iterator[LineBlock]:
        """A JSON Lines input's lines, a block at a time (instead of ``rows``)."""
        for first, data in self.file.blocks():
            yield LineBlock(self.spec.index, first, data)


def _csv_parse(mapping: ColumnMapping, inner: Callable[[dict[str, Any]], Any]) -> Parse:
    def parse(row: dict[str | None, Any]) -> Any:
        if None in row:
            return {"path": "", "reason": f"the row has {len(row[None])} cells more than the header"}
        result = inner(mapping.item(row))  # type: ignore[arg-type]
        if isinstance(result, dict):
            column = mapping.column_of(result["path"])
            reason = f"{result['reason']} (column {column!r})" if column else result["reason"]
            return {"path": result["path"], "reason": reason}
        return result

    return parse


def _csv_time(mapping: ColumnMapping) -> Callable[[Any], int | None]:
    column = mapping.columns.get("occurred_at")
    constant = mapping.constants.get("occurred_at")
    return lambda row: parse_time_us(row.get(column) if column else constant)


@contextmanager
def open_input(spec: InputSpec, parser: EventParser) -> Iterator[OpenInput]:
    with InputFile(spec.path) as file:
        if spec.csv is None:
            parse: Parse = profile_from_line if spec.profiles else parser.line
            yield OpenInput(spec, file, file.lines(), parse, line_time_us, parser)
            return
        header, rows = file.csv_rows()
        fields = PROFILE_FIELDS if spec.profiles else EVENT_FIELDS
        mapping = ColumnMapping.for_header(header, spec.csv.columns, spec.csv.constants, fields)
        missing = mapping.missing_columns(header)
        if missing:
            raise NotTheSchema(
                f"{spec.path}: the mapping names column(s) {', '.join(map(repr, missing))}, which the header does"
                f" not have (its columns: {', '.join(header) or 'none'}); nothing was sent"
            )
        inner = profile_from_item if spec.profiles else parser.item
        yield OpenInput(spec, file, rows, _csv_parse(mapping, inner), _csv_time(mapping), parser)


def probe(spec: InputSpec, parser: EventParser, lines: int) -> None:
    """NotTheSchema if each of the first ``lines`` lines of the input is rejected."""
    faults: Counter[str] = Counter()
    first: tuple[int, str] | None = None
    with open_input(spec, parser) as opened:
        for seen, (number, row) in enumerate(opened.rows, 1):
            result = opened.parse(row)
            if not isinstance(result, dict):
                return
            reason = f"{result['path']}: {result['reason']}" if result["path"] else result["reason"]
            faults[reason] += 1
            first = first or (number, reason)
            if seen >= lines:
                break
    if first is not None:
        what = "account profiles" if spec.profiles else "Churnwatch events"
        common, n = faults.most_common(1)[0]
        raise NotTheSchema(
            f"{spec.path} does not look like {what}: its first {sum(faults.values())} line(s) were all rejected"
            f" (line {first[0]}: {first[1]}; most common: {common!r} x{n}); nothing was sent"
        )


@dataclass(frozen=True)
class Scan:
    lines: int
    in_order: bool
    first_step_back: int | None


# JSON Lines blocks -> each with its lines and the order check of its times alone, in block order
ScanBlocks = Callable[[Iterable[LineBlock]], Iterator[tuple[LineBlock, tuple[int, OrderCheck]]]]


def _scan_here(blocks: Iterable[LineBlock]) -> Iterator[tuple[LineBlock, tuple[int, OrderCheck]]]:
    return ((block, block_order(block)) for block in blocks)


def scan(
    spec: InputSpec, parser: EventParser, on_bytes: Callable[[int], None], scan_blocks: ScanBlocks = _scan_here
) -> Scan:
    """Event times only, no validation: does the input ever go back in time, and how many lines it has.
    ``scan_blocks`` may check JSON Lines blocks elsewhere (reader.py's workers)."""
    check = OrderCheck()
    count = 0
    with open_input(spec, parser) as opened:
        if opened.is_jsonl:
            for block, (lines, block_check) in scan_blocks(opened.blocks()):
                count += lines
                if not check.follow(block_check):
                    scan_block(block, check)  # where it first goes back
                on_bytes(opened.file.position())
            return Scan(count, check.in_order, check.first_step_back)
        for number, row in opened.rows:
            check.observe(opened.time_of(row), number)
            count += 1
            if count % 8192 == 0:
                on_bytes(opened.file.position())
        on_bytes(opened.file.position())
    return Scan(count, check.in_order, check.first_step_back)


def event_records(
    opened: OpenInput,
    rejects: RejectLog,
    *,
    expect_order: bool,
    stopping: Callable[[], bool],
    on_read: Callable[[int], None],
) -> Iterator[EventRecord]:
    """The input's good events as records, in file order; bad lines to ``rejects``. ``on_read`` is told how many
    lines were read, every 1024 (JSON Lines: every block); reading stops early when ``stopping()`` says so."""
    if opened.is_jsonl:
        blocks = itertools.takewhile(lambda _: not stopping(), opened.blocks())
        validated = (validate_block(opened.parser, block) for block in blocks)
        yield from block_records(opened, rejects, validated, expect_order=expect_order, on_read=on_read)
        return
    index, name, parse = opened.spec.index, str(opened.spec.path), opened.parse
    latest, count = -(2**63), 0
    for number, row in opened.rows:
        opened.last_line, count = number, count + 1
        if count & 1023 == 0:
            on_read(1024)
            if stopping():
                return
        result = parse(row)
        if isinstance(result, dict):
            rejects.add(Reject(name, number, result["path"], result["reason"]))
            continue
        event, value = cast(tuple[Event, bytes], result)
        at = time_us(event.occurred_at)
        if expect_order:
            if at < latest:
                raise OrderBroken(f"{name} line {number} goes back in time, though the order scan found it sorted")
            latest = at
        yield at, index, number, event.account_id.encode(), value
    on_read(count & 1023)


def block_records(
    opened: OpenInput,
    rejects: RejectLog,
    validated: Iterable[BlockResult],
    *,
    expect_order: bool,
    on_read: Callable[[int], None],
) -> Iterator[EventRecord]:
    """``event_records`` of a JSON Lines input from its blocks as validated (here or by reader.py's workers)."""
    for records in block_record_lists(opened, rejects, validated, expect_order=expect_order, on_read=on_read):
        yield from records


def block_record_lists(
    opened: OpenInput,
    rejects: RejectLog,
    validated: Iterable[BlockResult],
    *,
    expect_order: bool,
    on_read: Callable[[int], None],
) -> Iterator[list[EventRecord]]:
    """``block_records`` a block's list at a time."""
    name, latest = str(opened.spec.path), -(2**63)
    for result in validated:
        for number, path, reason in result.rejects:
            rejects.add(Reject(name, number, path, reason))
        opened.last_line = result.last_line or opened.last_line
        on_read(result.lines)
        if not result.records:
            continue
        if expect_order:
            first_at, _, first_line, _, _ = result.records[0]
            back = first_line if first_at < latest else result.step_back
            if back is not None:
                raise OrderBroken(f"{name} line {back} goes back in time, though the order scan found it sorted")
            latest = result.records[-1][0]
        yield result.records


def profile_records(opened: OpenInput, rejects: RejectLog) -> Iterator[AccountProfile]:
    name = str(opened.spec.path)
    for number, row in opened.rows:
        result = opened.parse(row)
        opened.last_line = number
        if isinstance(result, dict):
            rejects.add(Reject(name, number, result["path"], result["reason"]))
        elif isinstance(result, AccountProfile):
            yield result
