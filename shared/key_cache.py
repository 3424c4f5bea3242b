"""What the key check may answer from memory, pure (time passed in).

The rules, and why:
- a verdict younger than ``ttl`` is used as it is: a revocation takes effect within ``ttl`` while the database
  answers;
- otherwise, while the database is believed up, the database is asked (and the caller waits for the answer);
- while it is down (a lookup failed), a key that was *valid* when last checked stays valid until ``ttl +
  stale_grace`` after that check: events keep flowing during a PostgreSQL outage, for a bounded time;
- a key that was revoked when last checked stays refused;
- anything else (a key never seen, or not found before) is *unavailable* (503), never let in: the database is
  asked again at most every ``retry_seconds`` (by the request that finds it is time, or in the background while
  stale verdicts are served), so a recovery is noticed within ``retry_seconds`` of the database answering.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.api_keys import ApiKey


@dataclass(frozen=True)
class CachePolicy:
    ttl: float
    stale_grace: float
    retry_seconds: float = 1.0


@dataclass(frozen=True)
class Verdict:
    """The database's answer for one key hash: the key, or None (no such key), and when it was given."""

    key: ApiKey | None
    checked_at: float


@dataclass
class DatabaseState:
    down_since: float | None = None
    next_attempt_at: float = 0.0

    def failed(self, now: float, policy: CachePolicy) -> None:
        if self.down_since is None:
            self.down_since = now
        self.next_attempt_at = now + policy.retry_seconds

    def answered(self) -> None:
        self.down_since = None
        self.next_attempt_at = 0.0


class Action(Enum):
    USE = "use"  # answer with the cached verdict
    USE_STALE = "use_stale"  # answer with a valid key past its ttl (database down)
    ASK = "ask"  # query the database and wait for it
    UNAVAILABLE = "unavailable"  # 503: cannot say now


@dataclass(frozen=True)
class Decision:
    action: Action
    key: ApiKey | None = None
    probe: bool = False  # also ask the database in the background (USE_STALE only)


def decide_lookup(verdict: Verdict | None, db: DatabaseState, now: float, policy: CachePolicy) -> Decision:
    if verdict is not None and now - verdict.checked_at < policy.ttl:
        return Decision(Action.USE, verdict.key)
    if db.down_since is None:
        return Decision(Action.ASK)
    due = now >= db.next_attempt_at
    if verdict is not None and verdict.key is not None:
        if not verdict.key.active:
            return Decision(Action.USE, verdict.key)  # a revocation is for good
        if now - verdict.checked_at < policy.ttl + policy.stale_grace:
            return Decision(Action.USE_STALE, verdict.key, probe=due)
    return Decision(Action.ASK) if due else Decision(Action.UNAVAILABLE)


def usable_while_down(verdicts: list[Verdict], now: float, policy: CachePolicy) -> int:
    """How many keys would still be let in if the database stayed down from now."""
    limit = policy.ttl + policy.stale_grace
    return sum(1 for v in verdicts if v.key is not None and v.key.active and now - v.checked_at < limit)
