"""Which events of a batch go to the fold: an event id counts once per account. Pure.

An event is known by an 8-byte key, the first 8 bytes of md5(event_id), kept per account and day in
PostgreSQL (``seen_event_days``) for as long as an event of that day can count (the account's watermark
minus the grace period; older days are pruned). A copy of an event (a retry, a replay) carries its time, so
it is recognised for as long as it could count at all; an id re-sent with a time more than the grace period
after its first use counts as a new event. Two distinct ids of one account share a key with a chance of
about n^2 / 2^65 for n ids kept (about 1e-10 for 80,000): such an event would be taken for a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime

from services.scorer.decode import ScorerEvent
from services.scorer.windows import WindowRules, too_late

KEY_BYTES = 8


def event_key(event_id: str) -> bytes:
    return hashlib.md5(event_id.encode(), usedforsecurity=False).digest()[:KEY_BYTES]


def keys_of(ids: bytes) -> Iterable[bytes]:
    """The keys in one stored row (concatenated)."""
    return (ids[i : i + KEY_BYTES] for i in range(0, len(ids), KEY_BYTES))


def first_sightings(
    events: Iterable[ScorerEvent],
    known: dict[str, dict[bytes, date]],
    watermarks: dict[str, datetime],
    rules: WindowRules,
) -> tuple[list[ScorerEvent], dict[tuple[str, date], bytes]]:
    """The events to fold, in arrival order, and the keys to add per (account, day).

    An event too late to count at its place in the stream goes to the fold (which counts it as late) whether
    its id was seen or not; any other event goes unless its key was counted on a day that can still count.
    So what an event is taken for depends only on the events before it, never on where batches were cut.
    ``known`` (per account, key -> day counted) and ``watermarks`` (each account's latest event time) are
    updated in place as the fold will move them.
    """
    to_fold: list[ScorerEvent] = []
    added: dict[tuple[str, date], bytearray] = {}
    for e in events:
        account, at = e.account_id, e.occurred_at
        on = at.date()
        wm = watermarks.get(account)
        if too_late(wm, on, rules):
            to_fold.append(e)
            continue
        key = event_key(e.event_id)
        seen = known.get(account)
        if seen is None:
            seen = known[account] = {}
        counted_on = seen.get(key)
        if counted_on is not None and not too_late(wm, counted_on, rules):
            continue
        seen[key] = on
        to_fold.append(e)
        if wm is None or at > wm:
            watermarks[account] = at
        ids = added.get((account, on))
        if ids is None:
            ids = added[account, on] = bytearray()
        ids.extend(key)
    return to_fold, {day: bytes(keys) for day, keys in added.items()}
