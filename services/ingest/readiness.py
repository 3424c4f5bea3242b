"""What ingest's /readyz means: the event path works.

Ready when Kafka answers (the ``kafka`` check) and the key check can let a caller in (``api_keys``): auth is off,
or PostgreSQL answers, or at least one key is known valid within its outage grace
(``CHURNWATCH_AUTH_STALE_GRACE_SECONDS``). A PostgreSQL outage alone is a *note* (``notes.database``), not a 503:
events keep flowing, so pulling every ingest instance out of a load balancer would only make it worse. What the
note says also stops: new or unknown keys (503 ``auth_unavailable``) and the account endpoints (503).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_reachable
from shared.key_store import KeyStore


async def key_check_ready(engine: AsyncEngine, keys: KeyStore, *, auth_required: bool, notes: dict[str, str]) -> bool:
    """Updates ``notes`` (shown by /readyz) with the database's state."""
    try:
        reachable = await asyncio.wait_for(database_reachable(engine), 2.0)
    except TimeoutError:
        reachable = False
    if reachable:
        notes.pop("database", None)
        return True
    usable = keys.usable_while_down()
    grace = keys.policy.ttl + keys.policy.stale_grace
    notes["database"] = (
        f"PostgreSQL unreachable: events are accepted for the {usable} API keys known valid (each for up to "
        f"{grace:.0f} s after its last check); other keys get 503 auth_unavailable, account endpoints 503"
    )
    return not auth_required or usable > 0
