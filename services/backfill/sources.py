"""Reading input files and turning each line into an event (or a profile) or a reject.

Events are validated by ingest's own functions (services/ingest/validation.py): the schema, the event-time
limits, the per-event size and ``received_at`` stamped as ingest stamps it. A usual line takes one pydantic
pass over its bytes; any doubt falls back to ``validate_body``, which names the fault.

Files: JSON Lines (anything not ``.csv``), or CSV with a header row; either may be gzipped (``.gz``).
Line numbers count physical lines from 1 (a CSV's header is line 1).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from services.ingest.body import nul_path, parse_json
from services.ingest.errors import FieldError, IngestError, field_errors
from services.ingest.validation import (
    EventRules,
    encode_received,
    received_stamp,
    validate_body,
    validate_item,
)
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event

# "no age limit": history may be as old as it likes (year ~1026 is still refused, as nothing real is that old)
NO_AGE_LIMIT = timedelta(days=365_000)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BLOCK_BYTES = 1 << 20
_VALIDATE_EVENT_JSON = EVENT_ADAPTER.validator.validate_json  # the TypeAdapter's own, without its wrapper per line

# (occurred_at in microseconds since the epoch, input index, line number, key, value): sorts by event time,
# then by where it was read, so equal times keep their input order
EventRecord = tuple[int, int, int, bytes, bytes]


def event_rules(*, max_event_bytes: int, max_future: timedelta, max_age: timedelta | None) -> EventRules:
    return EventRules(
        max_event_bytes=max_event_bytes,
        max_batch_events=1,
        max_future=max_future,
        max_age=max_age if max_age is not None else NO_AGE_LIMIT,
        time_policy="reject",
    )


def time_us(at: datetime) -> int:
    return (at - EPOCH) // _MICROSECOND


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    path: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "path": self.path, "reason": self.reason}


def is_csv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


class InputFile:
    """One open input: its lines (or CSV rows) and how many of its bytes (compressed, if gzipped) were read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw: IO[bytes] = path.open("rb")
        self._stream: IO[bytes] = self._raw
        if path.name.endswith(".gz"):
            self._stream = gzip.GzipFile(fileobj=self._raw)  # type: ignore[assignment]
        self._text: io.TextIOWrapper | None = None  # kept: a wrapper that goes away closes what it wraps

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._text is not None:
            self._text.close()
        self._stream.close()
        self._raw.close()

    def position(self) -> int:
        return self._raw.tell()

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """Non-blank lines with their numbers."""
        for number, raw in enumerate(self._stream, 1):
            if raw.strip():
                yield number, raw

    def blocks(self, size: int = _BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
        """Whole lines, about ``size`` bytes at a time, each block with its first line's number: one read and one
        split per block instead of a readline per line (only the file's last line may lack its newline)."""
        number, rest = 1, b""
        while chunk := self._stream.read(size):
            data = rest + chunk if rest else chunk
            end = data.rfind(b"\n") + 1
            if end == 0:  # a line longer than a block: read on
                rest = data
                continue
            block, rest = (data, b"") if end == len(data) else (data[:end], data[end:])
            yield number, block
            number += block.count(b"\n")
        if rest:
            yield number, rest

    def csv_rows(self) -> tuple[list[str], Iterator[tuple[int, dict[str, str | None]]]]:
        """The header and the rows (a row with more cells than the header keeps the extra ones under None)."""
        self._text = io.TextIOWrapper(self._stream, encoding="utf-8", errors="replace", newline="")
        reader = csv.DictReader(self._text)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header

        def rows() -> Iterator[tuple[int, dict[str, str | None]]]:
            for row in reader:
                yield reader.line_num, row

        return header, rows()


def _first_fault(exc: IngestError) -> FieldError:
    if exc.fields:
        first = exc.fields[0]
        return {"path": "" if first["path"] in ("body", "event") else first["path"], "reason": first["reason"]}
    return {"path": "", "reason": exc.message}


class EventParser:
    """Line (or CSV row) -> (event, bytes for Kafka) or the first fault; ``now`` is read every 1024 events."""

    def __init__(self, rules: EventRules, clock: Callable[[], datetime]) -> None:
        self._rules = rules
        self._clock = clock
        self._calls = 0
        self._refresh()

    def _refresh(self) -> None:
        self._now = self._clock()
        self._stamp = received_stamp(self._now)
        # event_time_problem's limits, worked out once per refresh rather than per line
        self._earliest, self._latest = self._now - self._rules.max_age, self._now + self._rules.max_future

    def _tick(self) -> None:
        self._calls += 1
        if self._calls % 1024 == 0:
            self._refresh()

    def line(self, raw: bytes) -> tuple[Event, bytes] | FieldError:
        self._tick()
        return self._usual(raw) or self._named_fault(raw)

    def _usual(self, raw: bytes) -> tuple[Event, bytes] | None:
        """The event and its bytes when the line is plainly fine (one pydantic pass), else None."""
        if b"\\u0000" in raw:  # a NUL takes the naming path, as in ingest
            return None
        try:
            event: Event = _VALIDATE_EVENT_JSON(raw)
            if self._earliest <= event.occurred_at <= self._latest:  # else event_time_problem names it
                value = encode_received(event, self._stamp)
                if len(value) <= self._rules.max_event_bytes:
                    return event, value
        except (ValidationError, PydanticSerializationError):
            pass
        return None

    def _named_fault(self, raw: bytes) -> tuple[Event, bytes] | FieldError:
        try:
            valid = validate_body(raw, self._now, self._rules)
        except IngestError as exc:
            return _first_fault(exc)
        payload = parse_json(raw)  # it parsed as a body already; a body may be a batch, a line may not
        if len(valid.events) != 1 or (isinstance(payload, dict) and "events" in payload):
            return {"path": "", "reason": "a line holds one event, not a batch"}
        return valid.events[0], valid.values[0]

    def item(self, item: dict[str, Any]) -> tuple[Event, bytes] | FieldError:
        """A mapped CSV row: the same checks through ingest's per-event path."""
        self._tick()
        nul = nul_path(item)
        if nul is not None:
            return {"path": nul, "reason": "contains a NUL character"}
        result = validate_item(item, "", self._now, self._rules)
        if isinstance(result, dict):
            return {"path": result["path"], "reason": result["reason"]}
        return result, encode_received(result, self._stamp)


def profile_from_line(raw: bytes) -> AccountProfile | FieldError:
    try:
        return AccountProfile.model_validate_json(raw)
    except ValidationError as exc:
        return _profile_fault(exc)


def profile_from_item(item: dict[str, Any]) -> AccountProfile | FieldError:
    try:
        return AccountProfile.model_validate(item)
    except ValidationError as exc:
        return _profile_fault(exc)


def _profile_fault(exc: ValidationError) -> FieldError:
    first = field_errors(exc)[0]
    return {"path": "" if first["path"] == "body" else first["path"], "reason": first["reason"]}
