"""Grouping: the notices of one account that arise together go out as one message per destination. Pure.

Like Alertmanager's group_wait / group_interval, per (account, destination): the first notice of a new group
waits ``wait`` (CHURNWATCH_GROUP_WAIT_SECONDS) for the rest of its evaluation; every notice queued meanwhile
joins it. After a group went out, later notices for the same account and destination within ``interval``
(CHURNWATCH_GROUP_INTERVAL_SECONDS) wait for the end of that interval and go out together, instead of paging
again for each. Each notice keeps its own outbox row (tracked, retried and shown per alert); only the send is
shared. A JSON webhook is a machine receiver and gets one request per notice; digests have their own timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerter.routing import Channel

GROUPED_CHANNELS = frozenset({Channel.SLACK, Channel.EMAIL, Channel.CONSOLE})
MAX_GROUP = 100  # notices in one message at most; more (a backfill's burst) go out in the next one


@dataclass(frozen=True)
class GroupTiming:
    wait: timedelta = timedelta(seconds=5)
    interval: timedelta = timedelta(seconds=300)


@dataclass(frozen=True)
class DestinationHistory:
    """What the outbox holds for one (account, destination): its waiting group and its last message."""

    pending_at: datetime | None = None  # when the group already waiting is due (None: no group waiting)
    last_sent_at: datetime | None = None


def send_at(now: datetime, timing: GroupTiming, history: DestinationHistory) -> datetime:
    """When a notice queued ``now`` for this account and destination goes out."""
    if history.pending_at is not None:
        return max(history.pending_at, now)  # join the group already waiting
    if history.last_sent_at is not None and history.last_sent_at + timing.interval > now:
        return history.last_sent_at + timing.interval  # a message just went out: the next one at its interval
    return now + timing.wait


def groups(channel: Channel) -> bool:
    return channel in GROUPED_CHANNELS
