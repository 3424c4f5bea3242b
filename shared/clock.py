"""The wall clock, for what is real time by nature (deliveries, reminders, snoozes, request stamps).

Scores and signals never read it: they run on event time. Code that needs "now" takes a ``Clock`` argument
defaulting to ``wall_clock``, so tests can pass a fixed time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)
