"""Events of all inputs in one time-ordered stream, made in a reader process beside the producing one.

``ordered_records`` is the whole read side: every input scanned for order, the ones in order streamed, the
others through the external sort, all merged by time (see ordering.py). Parsing and validating cost about as
much per event as producing does, so it runs in its own process (``ReaderProcess``, spawned) and hands the
producer chunks of ``(occurred_at, key, value)`` over a pipe: two cores instead of one. The pipe's buffer is
the back-pressure: a reader ahead of the producer waits. Rejects are written by the reader process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from services.backfill.ordering import merge_by_time, sort_by_time
from services.backfill.reading import (
    InputSpec,
    OpenInput,
    OrderBroken,
    RejectLog,
    Scan,
    event_records,
    open_input,
    scan,
)
from services.backfill.sources import EventParser, EventRecord
from services.ingest.validation import EventRules

_CHUNK = 2000  # events per message from the reader process


@dataclass(frozen=True)
class ReadJob:
    events: list[InputSpec]
    rules: EventRules
    rejects: Path  # appended to: the profiles' rejects may be there already
    spill: Path  # the caller's temporary directory for sorted runs
    run_events: int
    fan_in: int


class OrderedRead:
    """Every good event of the job's inputs, in (time, input, line) order, and how far each input was read."""

    def __init__(self, job: ReadJob, parser: EventParser, rejects: RejectLog, scans: dict[int, Scan]) -> None:
        self._job, self._parser, self._rejects, self._scans = job, parser, rejects, scans
        self._opened: list[OpenInput] = []
        self.read = 0

    def last_lines(self) -> dict[str, int]:
        return {str(o.spec.path): o.last_line for o in self._opened}

    def _count(self, lines: int) -> None:
        self.read += lines

    def _records(self, opened: OpenInput) -> Iterator[EventRecord]:
        in_order = self._scans[opened.spec.index].in_order
        return event_records(opened, self._rejects, expect_order=in_order, stopping=lambda: False, on_read=self._count)

    def __iter__(self) -> Iterator[EventRecord]:
        job = self._job
        with contextlib.ExitStack() as stack:
            self._opened = [stack.enter_context(open_input(spec, self._parser)) for spec in job.events]
            streams = [self._records(o) for o in self._opened if self._scans[o.spec.index].in_order]
            to_sort = [self._records(o) for o in self._opened if not self._scans[o.spec.index].in_order]
            if to_sort:
                chained = itertools.chain(*to_sort)
                streams.append(sort_by_time(chained, run_events=job.run_events, directory=job.spill, fan_in=job.fan_in))
            yield from merge_by_time(streams)


def read_events(conn: Connection, job: ReadJob) -> None:
    """The reader process: ("scanned", bytes)..., ("scan", unsorted inputs, lines), then ("events", [(at, key,
    value)], lines read, rejects, last line read per input)... and ("end",), or ("error", message)."""
    from shared.service_app import tune_gc_for_batches

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the producer decides
    tune_gc_for_batches()
    parser = EventParser(job.rules, lambda: datetime.now(UTC))
    rejects = RejectLog(job.rejects)
    try:
        read = OrderedRead(job, parser, rejects, _scan_all(conn, job, parser))
        chunk: list[tuple[int, bytes, bytes]] = []
        for at, _, _, key, value in read:
            chunk.append((at, key, value))
            if len(chunk) >= _CHUNK:
                conn.send(("events", chunk, read.read, rejects.count, read.last_lines()))
                chunk = []
        conn.send(("events", chunk, read.read, rejects.count, read.last_lines()))
        conn.send(("end",))
    except (OrderBroken, OSError, ValueError) as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        rejects.close()
        conn.close()


def _scan_all(conn: Connection, job: ReadJob, parser: EventParser) -> dict[int, Scan]:
    scans: dict[int, Scan] = {}
    before = 0
    for spec in job.events:
        scans[spec.index] = scan(spec, parser, lambda at, base=before: conn.send(("scanned", base + at)))  # type: ignore[misc]
        before += spec.path.stat().st_size
    unsorted = [str(s.path) for s in job.events if not scans[s.index].in_order]
    conn.send(("scan", unsorted, sum(s.lines for s in scans.values())))
    return scans


class ReaderFailed(Exception):
    """The reader process reported an error or died."""


class ReaderProcess:
    """The producing side's handle on the reader process."""

    def __init__(self, job: ReadJob) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with a running event loop
        self._conn, child = context.Pipe(duplex=False)
        self._process = context.Process(target=read_events, args=(child, job), name="backfill-reader", daemon=True)
        self._process.start()
        child.close()

    async def next_message(self, stopping: Callable[[], bool]) -> tuple[Any, ...] | None:
        """The next message, or None once a stop is requested; waits without blocking the event loop."""
        while not self._conn.poll():
            if stopping():
                return None
            if not self._process.is_alive() and not self._conn.poll():
                raise ReaderFailed(f"the reader process exited with {self._process.exitcode}")
            await asyncio.sleep(0.002)  # the producer's sends go on meanwhile
        try:
            message: tuple[Any, ...] = self._conn.recv()
        except EOFError as exc:
            raise ReaderFailed(f"the reader process exited with {self._process.exitcode}") from exc
        if message[0] == "error":
            raise ReaderFailed(message[1])
        return message

    def close(self) -> None:
        """Stops the reader if it still runs: it only reads, so nothing is lost by ending it."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(10)
        self._conn.close()
