"""Whether a notice is sent or only recorded: live, historic (a backfill) or shadow. Pure: time passed in.

A backfill of months of history must page no one, yet every notice it would have sent is still recorded
with its routing, for the backtest and the API. So the whole alert logic runs for every signal, and each
notice carries a mode that decides the status its outbox rows start in:

- ``live``: ``pending``, picked up by the delivery workers and sent.
- ``historic``: the signal's event time is older than the wall clock minus the notify max age
  (``CHURNWATCH_NOTIFY_MAX_AGE_SECONDS``, two days): recorded as ``historic``, never sent.
- ``shadow``: the alerter runs with ``CHURNWATCH_DELIVERY_MODE=shadow`` (a new routing file or scorecard
  tried beside a live deployment): recorded as ``shadow``, never sent.

Historic wins over shadow: a historic row would not have been sent by a live alerter either, a shadow row
would have been. A notice an alert causes by itself (reminder, snooze expiry, a person's resolve, a held
notice released) takes the quietest of the alert's latest notice mode and this alerter's delivery mode, so
an alert nobody was told about never pages anyone later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_NOTIFY_MAX_AGE = timedelta(days=2)


class DeliveryMode(StrEnum):
    LIVE = "live"
    SHADOW = "shadow"


class NoticeMode(StrEnum):
    LIVE = "live"
    HISTORIC = "historic"
    SHADOW = "shadow"

    @property
    def outbox_status(self) -> str:
        """The status an outbox row starts in; the delivery workers only take ``pending`` ones."""
        return "pending" if self is NoticeMode.LIVE else self.value

    @property
    def quietness(self) -> int:
        return _QUIETNESS[self]


_QUIETNESS = {NoticeMode.LIVE: 0, NoticeMode.SHADOW: 1, NoticeMode.HISTORIC: 2}


def quietest(*modes: NoticeMode) -> NoticeMode:
    """The mode that sends least: historic over shadow over live."""
    return max(modes, key=lambda m: m.quietness, default=NoticeMode.LIVE)


@dataclass(frozen=True)
class DeliveryPolicy:
    """This alerter's delivery mode and the age past which a signal is history, not news."""

    delivery: DeliveryMode = DeliveryMode.LIVE
    notify_max_age: timedelta = DEFAULT_NOTIFY_MAX_AGE

    @property
    def own_mode(self) -> NoticeMode:
        return NoticeMode.SHADOW if self.delivery is DeliveryMode.SHADOW else NoticeMode.LIVE

    def for_signal(self, occurred_at: datetime, now: datetime) -> NoticeMode:
        """A signal older than ``now - notify_max_age`` is historic (exactly that age is still news)."""
        if occurred_at < now - self.notify_max_age:
            return NoticeMode.HISTORIC
        return self.own_mode

    def follow_up(self, alert_mode: NoticeMode) -> NoticeMode:
        """The mode of a notice an alert causes by itself: as quiet as its latest notice, or quieter."""
        return quietest(alert_mode, self.own_mode)
