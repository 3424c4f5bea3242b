"""Pacing sends per destination. Pure: the monotonic time is passed in.

Slack incoming webhooks take about one message per second per webhook and answer a burst with 429. Rather
than learn that from a 429, the delivery workers of one process reserve a slot per target before each send:
the next send to that target may start ``min_interval`` later. A 429's Retry-After pushes the slot further.
"""

from __future__ import annotations


class TargetPacer:
    def __init__(self) -> None:
        self._free_at: dict[str, float] = {}  # target -> monotonic time its next send may start

    def held(self, now: float) -> list[str]:
        """Targets that may not be sent to yet; forgets the ones that are free again."""
        self._free_at = {t: at for t, at in self._free_at.items() if at > now}
        return list(self._free_at)

    def reserve(self, target: str, now: float, min_interval: float) -> None:
        """A send to ``target`` starts now: hold the target for ``min_interval``."""
        if min_interval > 0:
            self.hold_until(target, now + min_interval)

    def hold_until(self, target: str, until: float) -> None:
        """Hold ``target`` until ``until`` at least (a Retry-After)."""
        self._free_at[target] = max(self._free_at.get(target, until), until)

    def next_free_in(self, now: float) -> float | None:
        """Seconds until the first held target is free again; None when none is held."""
        pending = [at - now for at in self._free_at.values() if at > now]
        return min(pending) if pending else None
