"""Events of all inputs in one time-ordered stream, made in a reader process beside the producing one.

``OrderedRead`` is the whole read side: every input scanned for order, the ones in order streamed, the
others through the external sort, all merged by time (see ordering.py). Validating costs several times what
producing a record does, so it runs in its own process (``ReaderProcess``, spawned), which hands the producer
chunks of ``(occurred_at, key, value)`` over a pipe; and JSON Lines blocks are validated by a few worker
processes of its own (``BlockWorkers``), their results taken back in block order, so that validating uses
every core. The pipe's buffer is the back-pressure: a reader ahead of the producer waits, and a bounded number
of blocks is under way at the workers. Rejects are written by the reader process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from services.backfill.blocks import BlockResult, LineBlock, block_order, validate_block
from services.backfill.ordering import OrderCheck, merge_by_time, sort_by_time
from services.backfill.reading import (
    InputSpec,
    OpenInput,
    OrderBroken,
    RejectLog,
    Scan,
    block_record_lists,
    block_records,
    event_records,
    open_input,
    scan,
)
from services.backfill.sources import EventParser, EventRecord
from services.ingest.validation import EventRules

_CHUNK = 5000  # events per message from the reader process
_BLOCKS_PER_WORKER = 3  # blocks under way per worker: one being validated, the next ones queued


@dataclass(frozen=True)
class ReadJob:
    events: list[InputSpec]
    rules: EventRules
    rejects: Path  # appended to: the profiles' rejects may be there already
    spill: Path  # the caller's temporary directory for sorted runs
    run_events: int
    fan_in: int
    workers: int = 0  # processes validating JSON Lines blocks; 0: the reader process validates them itself


_worker_parser: EventParser | None = None  # a worker process's own parser, made by _start_worker


def _start_worker(rules: EventRules, reader_pid: int) -> None:
    from shared.service_app import tune_gc_for_batches

    global _worker_parser
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the producer decides what Ctrl-C means
    tune_gc_for_batches()
    _worker_parser = EventParser(rules, lambda: datetime.now(UTC))
    threading.Thread(target=_exit_with, args=(reader_pid,), daemon=True).start()


def _exit_with(reader_pid: int) -> None:
    """A worker whose reader process is gone (killed, so it could not shut its pool down) ends too."""
    while os.getppid() == reader_pid:
        time.sleep(0.5)
    os._exit(0)


def _validate_in_worker(block: LineBlock) -> BlockResult:
    assert _worker_parser is not None, "a block reached a worker process that was not started"
    return validate_block(_worker_parser, block)


_Result = TypeVar("_Result")


class BlockWorkers:
    """JSON Lines blocks validated in worker processes; results in block order, a bounded number under way."""

    def __init__(self, rules: EventRules, workers: int) -> None:
        self._window = workers * _BLOCKS_PER_WORKER
        # forked from the reader process (one thread, no event loop), they start with its modules imported: a
        # spawned worker spent ~0.8 s of CPU importing them again
        start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context(start),
            initializer=_start_worker,
            initargs=(rules, os.getpid()),
        )

    def validated(self, blocks: Iterable[LineBlock]) -> Iterator[BlockResult]:
        return (result for _, result in self._in_order(_validate_in_worker, blocks))

    def scanned(self, blocks: Iterable[LineBlock]) -> Iterator[tuple[LineBlock, tuple[int, OrderCheck]]]:
        return self._in_order(block_order, blocks)

    def _in_order(
        self, work: Callable[[LineBlock], _Result], blocks: Iterable[LineBlock]
    ) -> Iterator[tuple[LineBlock, _Result]]:
        pending: deque[tuple[LineBlock, Future[_Result]]] = deque()
        for block in blocks:
            pending.append((block, self._pool.submit(work, block)))
            if len(pending) >= self._window:
                done, result = pending.popleft()
                yield done, result.result()  # BrokenProcessPool if a worker died
        while pending:
            done, result = pending.popleft()
            yield done, result.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)  # waits for a block at most


class OrderedRead:
    """Every good event of the job's inputs, in (time, input, line) order, and how far each input was read."""

    def __init__(
        self,
        job: ReadJob,
        parser: EventParser,
        rejects: RejectLog,
        scans: dict[int, Scan],
        workers: BlockWorkers | None = None,
    ) -> None:
        self._job, self._parser, self._rejects, self._scans = job, parser, rejects, scans
        self._workers = workers
        self._opened: list[OpenInput] = []
        self.read = 0

    def last_lines(self) -> dict[str, int]:
        return {str(o.spec.path): o.last_line for o in self._opened}

    def _count(self, lines: int) -> None:
        self.read += lines

    def _records(self, opened: OpenInput) -> Iterator[EventRecord]:
        in_order = self._scans[opened.spec.index].in_order
        if opened.is_jsonl and self._workers is not None:
            validated = self._workers.validated(opened.blocks())
            return block_records(opened, self._rejects, validated, expect_order=in_order, on_read=self._count)
        return event_records(opened, self._rejects, expect_order=in_order, stopping=lambda: False, on_read=self._count)

    def chunks(self, size: int) -> Iterator[list[EventRecord]]:
        """The records in lists of about ``size``; one JSON Lines input in order goes in its blocks' lists, as
        validated, without a step per record (the usual backfill)."""
        only = self._job.events[0] if len(self._job.events) == 1 else None
        if only is None or only.csv is not None or not self._scans[only.index].in_order:
            records = iter(self)
            while chunk := list(itertools.islice(records, size)):
                yield chunk
            return
        with open_input(only, self._parser) as opened:
            self._opened = [opened]
            validated = self._workers.validated(opened.blocks()) if self._workers else self._validated_here(opened)
            yield from block_record_lists(opened, self._rejects, validated, expect_order=True, on_read=self._count)

    def _validated_here(self, opened: OpenInput) -> Iterator[BlockResult]:
        return (validate_block(self._parser, block) for block in opened.blocks())

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
    """The reader process: ("scanned", bytes)..., ("scan", unsorted inputs, lines), then ("events", [EventRecord],
    lines read, rejects, last line read per input)... and ("end",), or ("error", message)."""
    from shared.service_app import tune_gc_for_batches

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the producer decides
    signal.signal(signal.SIGTERM, _exit_on_terminate)  # so that the workers are shut down on the way out
    tune_gc_for_batches()
    parser = EventParser(job.rules, lambda: datetime.now(UTC))
    rejects = RejectLog(job.rejects)
    workers = BlockWorkers(job.rules, job.workers) if job.workers > 0 else None  # they start during the scan
    try:
        read = OrderedRead(job, parser, rejects, _scan_all(conn, job, parser, workers), workers)
        _send_records(conn, read, rejects)
        rejects.close()  # written out before "end": the producer may end this process once it has that
        conn.send(("end",))
    except (OrderBroken, OSError, ValueError, RuntimeError) as exc:  # BrokenProcessPool is a RuntimeError
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if workers is not None:
            workers.close()
        rejects.close()
        conn.close()


def _exit_on_terminate(signum: int, frame: FrameType | None) -> None:
    sys.exit(128 + signum)


def _send_records(conn: Connection, read: OrderedRead, rejects: RejectLog) -> None:
    for chunk in read.chunks(_CHUNK):
        conn.send(("events", chunk, read.read, rejects.count, read.last_lines()))
    conn.send(("events", [], read.read, rejects.count, read.last_lines()))


def _scan_all(conn: Connection, job: ReadJob, parser: EventParser, workers: BlockWorkers | None) -> dict[int, Scan]:
    scans: dict[int, Scan] = {}
    before = 0
    for spec in job.events:

        def scanned(at: int, base: int = before) -> None:
            conn.send(("scanned", base + at))

        scans[spec.index] = scan(spec, parser, scanned, workers.scanned) if workers else scan(spec, parser, scanned)
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
        # not a daemon, which may not have children (its workers); close() ends it, and it ends by itself if we
        # go away (its next send finds the pipe broken)
        self._process = context.Process(target=read_events, args=(child, job), name="backfill-reader")
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

    def close(self, *, finished: bool = False) -> None:
        """Ends the reader: one that ``finished`` (sent "end", its rejects written) is given a few seconds to shut
        its workers down by itself; one still reading is stopped, since it only reads. Bounded either way: a
        reader stuck on its way out (its worker pool's shutdown once hung in CI after every event was sent) is
        killed, or this process would hang at exit joining it; its workers end once it is gone (``_exit_with``)."""
        if finished:
            self._process.join(5)
        for stop in (self._process.terminate, self._process.kill):
            if not self._process.is_alive():
                break
            stop()
            self._process.join(5)
        self._conn.close()
