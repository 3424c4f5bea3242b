"""Event-time order, pure: reading a line's time cheaply, checking order, the external sort and the merge.

The scorer drops an event more than its grace period older than its account's latest, so each account's
events must reach Kafka in event-time order. Before anything is sent every input is scanned once for its
times only (no validation): an input already in non-decreasing ``occurred_at`` order is streamed as it is read;
an unsorted one goes through an external sort: its events are read in runs of at most ``run_events``, each
run sorted in memory and spilled to a temporary file, and the runs are merged back with ``heapq.merge``
(at most ``fan_in`` at a time), so memory stays bounded at any input size. All inputs are then merged by
time. Equal times keep their order: input order, then line order (both are part of the sort key).
"""

from __future__ import annotations

import heapq
import json
import pickle
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from services.backfill.sources import EventRecord, time_us
from shared.events import UtcDatetime

_UTC_TIME: TypeAdapter[datetime] = TypeAdapter(UtcDatetime)
_OCCURRED_AT = re.compile(rb'"occurred_at"\s*:\s*"([^"\\]*)"')
_CHUNK = 4096  # records per pickle in a spilled run: one load brings a chunk, not the run


def parse_time_us(value: Any) -> int | None:
    """``occurred_at`` as the schema reads it (aware, in UTC), in microseconds; None if the schema would refuse it."""
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:  # naive times are refused by the schema; an aware one is the same instant either way
            return time_us(at.astimezone(UTC)) if at.tzinfo is not None else None
    try:
        return time_us(_UTC_TIME.validate_python(value))
    except ValidationError:
        return None


def line_time_us(raw: bytes) -> int | None:
    """A JSON line's ``occurred_at`` without decoding the line, unless it is written unusually."""
    match = _OCCURRED_AT.search(raw)
    if match is not None and raw.count(b'"occurred_at"') == 1:
        return parse_time_us(match[1].decode("utf-8", "replace"))
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return parse_time_us(payload.get("occurred_at")) if isinstance(payload, dict) else None


class OrderCheck:
    """Fed event times as read; says whether they never went back, and where they first did."""

    def __init__(self) -> None:
        self.earliest: int | None = None
        self.latest: int | None = None
        self.first_step_back: int | None = None  # the line number

    @property
    def in_order(self) -> bool:
        return self.first_step_back is None

    def observe(self, at: int | None, line: int) -> None:
        if at is None:
            return
        if self.latest is not None and at < self.latest and self.first_step_back is None:
            self.first_step_back = line
        if self.latest is None or at > self.latest:
            self.latest = at
        if self.earliest is None or at < self.earliest:
            self.earliest = at

    def follow(self, after: OrderCheck) -> bool:
        """Takes in ``after``, the check of the lines that come next (checked apart, e.g. in another process).
        False, taking nothing in, when one of them goes back before this check's latest and none went back
        before: only observing those lines again says which is the first."""
        if after.latest is None or after.earliest is None:
            return True
        if self.latest is not None and after.earliest < self.latest and self.first_step_back is None:
            return False
        self.first_step_back = after.first_step_back if self.first_step_back is None else self.first_step_back
        self.latest = after.latest if self.latest is None else max(self.latest, after.latest)
        self.earliest = after.earliest if self.earliest is None else min(self.earliest, after.earliest)
        return True


def merge_by_time(streams: list[Iterator[EventRecord]]) -> Iterator[EventRecord]:
    """Time-ordered streams into one, by (time, input, line)."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams)


def sort_by_time(
    records: Iterable[EventRecord], *, run_events: int, directory: Path, fan_in: int = 64
) -> Iterator[EventRecord]:
    """``records`` in (time, input, line) order, holding at most ``run_events`` of them in memory at once.

    Nothing is written when they fit in one run; otherwise sorted runs are spilled under ``directory`` (the
    caller's temporary directory) and merged, ``fan_in`` runs at a time.
    """
    runs: list[Path] = []
    buffer: list[EventRecord] = []
    for record in records:
        buffer.append(record)
        if len(buffer) >= run_events:
            buffer.sort()
            runs.append(_spill(buffer, directory))
            buffer = []
    buffer.sort()
    if not runs:
        yield from buffer
        return
    if buffer:
        runs.append(_spill(buffer, directory))
    del buffer
    while len(runs) > fan_in:
        group, runs = runs[:fan_in], runs[fan_in:]
        runs.append(_spill(heapq.merge(*map(_read_run, group)), directory))
        for done in group:
            done.unlink()
    yield from heapq.merge(*map(_read_run, runs))


def _spill(records: Iterable[EventRecord], directory: Path) -> Path:
    with tempfile.NamedTemporaryFile(dir=directory, prefix="run-", suffix=".pickle", delete=False) as out:
        chunk: list[EventRecord] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= _CHUNK:
                pickle.dump(chunk, out, protocol=pickle.HIGHEST_PROTOCOL)
                chunk = []
        if chunk:
            pickle.dump(chunk, out, protocol=pickle.HIGHEST_PROTOCOL)
        return Path(out.name)


def _read_run(path: Path) -> Iterator[EventRecord]:
    with path.open("rb") as run:
        while True:
            try:
                chunk: list[EventRecord] = pickle.load(run)  # our own temporary file, written just now
            except EOFError:
                return
            yield from chunk
