"""Logging a dependency's state, not every failure: one line when it goes bad, one when it is back, and a
rate-limited reminder while it stays bad (with how many failures were not logged).

A database outage used to write a traceback or a line per refused request (tens of thousands of lines in minutes);
an operator wants to know *that* it is down, since when, and when it came back.

``StateChanges`` is the pure decision (time passed in); ``StateLog`` writes its lines to a logger::

    db_log = StateLog(log, "API key database", remind_every=60)
    db_log.failing("ConnectionRefusedError")  # first call: "API key database unavailable: ConnectionRefusedError"
    db_log.failing("ConnectionRefusedError")  # silent, counted; after 60 s: "... still unavailable for 60 s ..."
    db_log.healthy()                          # "API key database back after 73 s (1,234 failures)"
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class StateChanges:
    """What to say about a subject's state, if anything. ``settle_seconds``: how long without failures before it
    counts as back (for a state that flickers, such as overload)."""

    subject: str
    remind_every: float = 60.0
    settle_seconds: float = 0.0
    failing_since: float | None = None
    last_failure_at: float = 0.0
    last_said_at: float = 0.0
    failures: int = 0  # since it went bad
    unsaid: int = 0  # since the last line

    @property
    def is_failing(self) -> bool:
        return self.failing_since is not None

    def failure(self, now: float, detail: str) -> str | None:
        self.failures += 1
        self.last_failure_at = now
        if self.failing_since is None:
            self.failing_since = now
            self.failures, self.unsaid, self.last_said_at = 1, 0, now
            return f"{self.subject} unavailable: {detail}"
        if now - self.last_said_at < self.remind_every:
            self.unsaid += 1
            return None
        line = (
            f"{self.subject} still unavailable after {now - self.failing_since:.0f} s: {detail} "
            f"({self.failures} failures so far, {self.unsaid + 1} since the last line)"
        )
        self.last_said_at, self.unsaid = now, 0
        return line

    def success(self, now: float) -> str | None:
        if self.failing_since is None or now - self.last_failure_at < self.settle_seconds:
            return None
        line = f"{self.subject} back after {now - self.failing_since:.0f} s ({self.failures} failures)"
        self.failing_since, self.failures, self.unsaid = None, 0, 0
        return line


class StateLog:
    """``StateChanges`` written to a logger: WARNING when it goes bad and for reminders, INFO when it is back."""

    def __init__(
        self,
        logger: logging.Logger,
        subject: str,
        *,
        remind_every: float = 60.0,
        settle_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._clock = clock
        self.changes = StateChanges(subject, remind_every, settle_seconds)

    @property
    def is_failing(self) -> bool:
        return self.changes.is_failing

    def failing(self, detail: str) -> None:
        line = self.changes.failure(self._clock(), detail)
        if line is not None:
            self._log.warning("%s", line)

    def healthy(self) -> None:
        if not self.changes.is_failing:
            return  # the common case, one attribute read
        line = self.changes.success(self._clock())
        if line is not None:
            self._log.info("%s", line)


class QuietRepeats(logging.Filter):
    """A logging filter for a library that logs every retry (aiokafka: "Unable connect to node ..." once a second
    while the broker is away): the same message template passes at most once per ``every`` seconds, and says how
    many like it were held back since. It sits on the root logger's handlers and looks only at records of the
    ``prefix`` logger and its children (aiokafka logs from ``aiokafka``, ``aiokafka.conn``,
    ``aiokafka.consumer.group_coordinator``, ...: a filter on one logger would not see its children's records).
    """

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic, prefix: str = "") -> None:
        super().__init__()
        self._every = every
        self._clock = clock
        self._prefix = prefix
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}  # template -> (last passed at, held since)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._prefix and not (record.name == self._prefix or record.name.startswith(self._prefix + ".")):
            return True
        now = self._clock()
        template = (record.name, record.msg)
        last = self._seen.get(template)
        if last is not None and now - last[0] < self._every:
            self._seen[template] = (last[0], last[1] + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[template] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} more like this in the last {now - last[0]:.0f} s)"
        return True


def quiet_repeats(logger_name: str, every: float = 60.0) -> None:
    """Installs one ``QuietRepeats`` for the named logger and its children on each root handler (again: no
    second one). Call it after the handlers exist (``configure_logging`` does, for aiokafka)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietRepeats) and f._prefix == logger_name for f in handler.filters):
            handler.addFilter(QuietRepeats(every, prefix=logger_name))
