"""Data problems in PostgreSQL: the ones open in the checkpointed watches, and the ones a person released.

A release names an open problem ("source:mobile-app", or "accounts:went-quiet") and its first day: the alerts
it held back are no longer held, so the accounts' next day close raises whatever condition still holds. A
problem that ends and starts again later is a new problem, held again. Every scorer instance reads the
releases every few seconds (``released``); this module does the SQL, the watch decides (data_quality.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_WATCHES = text("SELECT partition, watch FROM scorer_partition_watch WHERE topic = :topic")
_RELEASES = text("SELECT problem, since, released_by, released_at FROM data_problem_releases")
_RELEASE = text(
    "INSERT INTO data_problem_releases (problem, since, released_by) VALUES (:problem, :since, :by)"
    " ON CONFLICT (problem, since) DO NOTHING"
)


@dataclass(frozen=True)
class OpenProblem:
    problem: str
    since: date
    partitions: tuple[int, ...]  # the events partitions whose watch has it open
    released_by: str | None = None
    released_at: datetime | None = None


async def open_problems(session: AsyncSession, events_topic: str) -> list[OpenProblem]:
    """The problems open in any partition's last checkpointed watch, with their releases, the oldest first."""
    since: dict[str, int] = {}
    partitions: dict[str, list[int]] = {}
    for r in await session.execute(_WATCHES, {"topic": events_topic}):
        for problem, first in (r.watch.get("raised") or {}).items():
            since[problem] = min(int(first), since.get(problem, int(first)))
            partitions.setdefault(problem, []).append(int(r.partition))
    releases = {(r.problem, r.since): r for r in await session.execute(_RELEASES)}
    out = []
    for problem, first in sorted(since.items(), key=lambda kv: (kv[1], kv[0])):
        day = date.fromordinal(first)
        rel = releases.get((problem, day))
        by, at = (rel.released_by, rel.released_at) if rel else (None, None)
        out.append(OpenProblem(problem, day, tuple(sorted(partitions[problem])), by, at))
    return out


async def released(session: AsyncSession) -> frozenset[tuple[str, int]]:
    """(problem, its first day as a day number) of every release, for the watches."""
    return frozenset((r.problem, r.since.toordinal()) for r in await session.execute(_RELEASES))


async def release(session: AsyncSession, events_topic: str, problem: str, by: str) -> OpenProblem | None:
    """Release the open ``problem`` (None if none is open by that name). Idempotent."""
    found = next((p for p in await open_problems(session, events_topic) if p.problem == problem), None)
    if found is None:
        return None
    await session.execute(_RELEASE, {"problem": problem, "since": found.since, "by": by})
    return found
