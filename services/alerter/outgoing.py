"""What a notifier is handed and what a failed send means. Pure: no sockets, time and randomness passed in.

``Outgoing`` is one message for one destination: a single notice, an account's group of notices (one message
with every reason, grouping.py) or a tech-touch digest. ``RetryPolicy`` decides the outbox row's next state
after a failed attempt; ``webhook_signature`` is the HMAC a JSON-webhook receiver verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.alerter.lifecycle import Action
from services.alerter.messages import AlertNotice


class DeliveryError(Exception):
    """A send that did not happen. ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outgoing:
    """One message ready to send: a single notice, an account's group of notices, or a digest's items."""

    delivery_id: int  # the first outbox row's id: Message-ID and X-Churnwatch-Delivery derive from it
    target: str
    notices: tuple[AlertNotice, ...]
    digest_period: str | None = None
    group_links: Mapping[Action, str] = field(default_factory=dict)  # act on every alert of the group at once

    @property
    def first(self) -> AlertNotice:
        return self.notices[0]

    @property
    def grouped(self) -> bool:
        return self.digest_period is None and len(self.notices) > 1


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed send is tried again, and when it is given up. A retryable failure is given up only once it
    has had ``max_attempts`` tries *and* its row is ``max_age_seconds`` old, so an outage of Slack or the mail
    server that lasts longer than the backoff schedule delays messages instead of killing them."""

    max_attempts: int = 8
    base_seconds: float = 1.0
    cap_seconds: float = 300.0
    max_age_seconds: float = 0.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Exponential backoff with full jitter; a server's Retry-After is a floor."""
        backoff = rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))
        return max(backoff, retry_after or 0.0)

    def gives_up(self, attempts: int, exc: DeliveryError, now: datetime, created_at: datetime | None) -> bool:
        if not exc.retryable:
            return True
        old_enough = created_at is None or now - created_at >= timedelta(seconds=self.max_age_seconds)
        return attempts >= self.max_attempts and old_enough

    def outcome(
        self, attempts: int, exc: DeliveryError, now: datetime, rng: random.Random, created_at: datetime | None = None
    ) -> dict[str, Any]:
        """The row's columns after a failed attempt: pending again later, or dead. Pure given ``rng``."""
        error = str(exc)[:1000]
        if self.gives_up(attempts, exc, now, created_at):
            return {"status": "dead", "attempts": attempts, "last_error": error}
        delay = self.delay(attempts, exc.retry_after, rng)
        return {
            "status": "pending",
            "attempts": attempts,
            "last_error": error,
            "next_attempt_at": now + timedelta(seconds=delay),
        }


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as receivers verify it (the timestamp stops replays)."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
