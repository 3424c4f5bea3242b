"""What the person at the terminal sees: a rich progress bar while it runs, one summary at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)


@dataclass
class Outcome:
    """How far a run got."""

    events_sent: int = 0
    profiles_sent: int = 0
    rejects: int = 0
    accounts: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    last_event_at_us: int | None = None  # the latest occurred_at handed to the producer
    last_lines: dict[str, int] = field(default_factory=dict)  # input -> last line read
    sorted_inputs: list[str] = field(default_factory=list)  # inputs that went through the external sort

    @property
    def last_event_at(self) -> datetime | None:
        if self.last_event_at_us is None:
            return None
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self.last_event_at_us)

    @property
    def rate(self) -> float:
        return self.events_sent / self.elapsed if self.elapsed > 0 else 0.0


def summary(outcome: Outcome, rejects_path: str) -> list[str]:
    lines = [
        f"{'interrupted' if outcome.interrupted else 'done'}: {outcome.events_sent} events sent"
        f" ({outcome.accounts} accounts), {outcome.profiles_sent} account profiles sent,"
        f" {outcome.rejects} rejected, in {outcome.elapsed:.1f} s ({outcome.rate:,.0f} events/s)",
    ]
    if outcome.rejects:
        lines.append(f"rejects: {rejects_path}")
    if outcome.sorted_inputs:
        lines.append(f"not in time order, sorted before sending: {', '.join(outcome.sorted_inputs)}")
    if outcome.interrupted:
        if outcome.last_event_at is not None:
            lines.append(f"every event up to occurred_at {outcome.last_event_at.isoformat()} was sent")
        lines += [f"  {name}: read to line {line}" for name, line in outcome.last_lines.items()]
        lines.append("running it again is harmless: the scorer counts each (account_id, event_id) once")
    return lines


class ProgressView:
    """Order scan by bytes, then lines read and events sent (with rate, ETA and rejects)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,  # a log or a pipe gets the summary only
        )
        self._bytes = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            DownloadColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._scan: TaskID | None = None
        self._read: TaskID | None = None
        self._sent: TaskID | None = None
        self._started = time.perf_counter()

    def scanning(self, total_bytes: int) -> None:
        self._bytes.start()
        self._scan = self._bytes.add_task("order scan", total=total_bytes)

    def scanned(self, done_bytes: int) -> None:
        if self._scan is not None:
            self._bytes.update(self._scan, completed=done_bytes)

    def sending(self, total_lines: int) -> None:
        self._bytes.stop()
        self._progress.start()
        self._started = time.perf_counter()
        self._read = self._progress.add_task("read", total=total_lines, note="lines")
        self._sent = self._progress.add_task("sent", total=total_lines, note="")

    def read_to(self, lines: int) -> None:
        if self._read is not None:
            self._progress.update(self._read, completed=lines)

    def sent(self, events: int, rejects: int) -> None:
        if self._sent is None:
            return
        rate = events / max(1e-6, time.perf_counter() - self._started)
        note = f"{rate:,.0f} events/s, {rejects} rejected"
        self._progress.update(self._sent, completed=events + rejects, note=note)

    def close(self) -> None:
        self._bytes.stop()
        self._progress.stop()
