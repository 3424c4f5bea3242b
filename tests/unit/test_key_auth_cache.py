"""The key check's memory, pure: what is answered from the cache, and for how long during a database outage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.api_keys import ApiKey, Scope
from shared.key_cache import Action, CachePolicy, DatabaseState, Verdict, decide_lookup, usable_while_down

POLICY = CachePolicy(ttl=10.0, stale_grace=900.0, retry_seconds=1.0)
CREATED = datetime(2026, 11, 1, tzinfo=UTC)
VALID = ApiKey("aaaa", "billing", frozenset({Scope.WRITE_EVENTS}), CREATED)
REVOKED = ApiKey("bbbb", "old", frozenset({Scope.WRITE_EVENTS}), CREATED, revoked_at=CREATED)
UP = DatabaseState()


def down(since: float = 0.0, next_attempt_at: float = 0.0) -> DatabaseState:
    return DatabaseState(down_since=since, next_attempt_at=next_attempt_at)


@pytest.mark.parametrize(
    ("verdict", "db", "now", "action", "key", "probe"),
    [
        # a fresh verdict is used whatever the database does
        (Verdict(VALID, 100.0), UP, 105.0, Action.USE, VALID, False),
        (Verdict(None, 100.0), down(), 105.0, Action.USE, None, False),
        (Verdict(REVOKED, 100.0), UP, 109.9, Action.USE, REVOKED, False),
        # past the ttl with the database up: ask it (so a revocation stops within the ttl)
        (Verdict(VALID, 100.0), UP, 110.0, Action.ASK, None, False),
        (None, UP, 0.0, Action.ASK, None, False),
        # database down: a key known valid stays valid until ttl + grace after its check, probing when due
        (Verdict(VALID, 100.0), down(next_attempt_at=200.0), 150.0, Action.USE_STALE, VALID, False),
        (Verdict(VALID, 100.0), down(next_attempt_at=150.0), 150.0, Action.USE_STALE, VALID, True),
        (Verdict(VALID, 100.0), down(next_attempt_at=2000.0), 1009.9, Action.USE_STALE, VALID, False),
        # ... and no longer: then it is like an unknown key
        (Verdict(VALID, 100.0), down(next_attempt_at=2000.0), 1010.0, Action.UNAVAILABLE, None, False),
        (Verdict(VALID, 100.0), down(next_attempt_at=1000.0), 1010.0, Action.ASK, None, False),
        # a revoked key stays refused, an unknown one is never let in: unavailable, or ask when a retry is due
        (Verdict(REVOKED, 100.0), down(next_attempt_at=2000.0), 150.0, Action.USE, REVOKED, False),
        (Verdict(None, 100.0), down(next_attempt_at=200.0), 150.0, Action.UNAVAILABLE, None, False),
        (None, down(next_attempt_at=200.0), 150.0, Action.UNAVAILABLE, None, False),
        (None, down(next_attempt_at=150.0), 150.0, Action.ASK, None, False),
    ],
)
def test_decide_lookup(
    verdict: Verdict | None, db: DatabaseState, now: float, action: Action, key: ApiKey | None, probe: bool
) -> None:
    decision = decide_lookup(verdict, db, now, POLICY)
    assert (decision.action, decision.key, decision.probe) == (action, key, probe)


def test_database_state_retries_at_the_interval_and_forgets_the_outage_when_it_answers() -> None:
    db = DatabaseState()
    db.failed(50.0, POLICY)
    db.failed(52.0, POLICY)
    assert db.down_since == 50.0 and db.next_attempt_at == 53.0
    db.answered()
    assert db.down_since is None and decide_lookup(Verdict(VALID, 0.0), db, 60.0, POLICY).action is Action.ASK


def test_usable_while_down_counts_valid_keys_within_their_grace() -> None:
    verdicts = [Verdict(VALID, 100.0), Verdict(VALID, 0.0), Verdict(REVOKED, 100.0), Verdict(None, 100.0)]
    assert usable_while_down(verdicts, 500.0, POLICY) == 2
    assert usable_while_down(verdicts, 950.0, POLICY) == 1
