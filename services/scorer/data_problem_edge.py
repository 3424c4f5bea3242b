"""The scorer's data-quality edge: the metrics of data problems and held raises, and reading releases.

The watches decide (services/scorer/watches.py, data_quality.py); this shows what they decided in Prometheus and
brings them the releases people made (``churnwatch data-problem release``), read every few seconds.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scorer import data_problems
from services.scorer.resident import ResidentAccounts

HELD = Counter(
    "churnwatch_scorer_held_signals_total",
    "Day closes at which a raise was held back because a data problem upstream may cause it (one per account, day"
    " and signal type: a condition held for a week counts seven)",
    ["signal_type"],
)
DATA_PROBLEM = Gauge(
    "churnwatch_scorer_data_problem",
    "1 while a data problem is open in this instance's partitions: a silent source (source:<name>) or far more"
    " accounts going quiet on one day than usual (accounts:went-quiet)",
    ["problem"],
)
RELEASES = Gauge("churnwatch_scorer_data_problem_releases", "Data problems released by a person, as last read")
RELEASES_EVERY_S = 5.0


class DataProblemEdge:
    def __init__(self, resident: ResidentAccounts, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._resident = resident
        self._sessions = sessions
        self._shown: set[str] = set()
        self._releases_read = 0.0

    def count_held(self) -> None:
        for signal_type, n in self._resident.held.items():
            HELD.labels(signal_type).inc(n)
        self._resident.held.clear()

    def show_open(self) -> None:
        now = self._resident.watches.open_problems()
        for gone in self._shown - now:
            DATA_PROBLEM.remove(gone)
        for problem in now:
            DATA_PROBLEM.labels(problem).set(1)
        self._shown = now

    async def refresh_releases(self) -> None:
        if time.monotonic() - self._releases_read < RELEASES_EVERY_S:
            return
        self._releases_read = time.monotonic()
        async with self._sessions() as session:
            released = await data_problems.released(session)
        self._resident.watches.release(released)
        RELEASES.set(len(released))
