"""The four invariants every fault scenario ends with, measured rather than only asserted.

I1 every event answered 2xx is on the topic and counted exactly once: the scorer's stored state of every account
   equals a from-scratch recompute over the events topic (duplicates once, late events as late), and the events
   it holds equal the recompute's (counted / lost / duplicated are those sums).
I2 the scorer's stored offsets only moved forward (tests/support/fault_stack.py OffsetSampler).
I3 one delivery per outbox row: every row sent arrived once (email by its Message-ID, Slack by its text), none
   dead; a duplicate is allowed only for the documented crash edge (services/alerter/delivery.py), at most one
   per delivery worker per alerter kill or database outage, and is counted.
I4 the dead-letter topic holds exactly the poison records written to the events topic (at least once each).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from services.scorer.codec import state_from_json
from services.scorer.scorecard import load_scorecard
from services.scorer.windows import WindowRules
from shared.events import decode_event
from tests.support.fault_stack import FaultSandbox
from tests.support.scorer_stream import read_topic, recompute, stored_states
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer


@dataclass
class EventFigures:
    sent: int  # distinct event ids answered 2xx
    counted: int  # events (logins, tickets, late ones) in the scorer's stored state
    expected: int  # the same in the recompute over the topic
    lost: int
    duplicated: int
    accounts_differing: list[str]
    missing_from_topic: list[str]
    short_by_partition: dict[int, int] = field(default_factory=dict)  # partition -> events the state lacks


@dataclass
class DeliveryFigures:
    expected: int  # outbox rows meant to go out (sent + pending + dead)
    sent: int  # messages the receivers got
    duplicated: int
    dead: int
    pending: int
    lost: int  # rows marked sent that no receiver got
    by_status: dict[str, int] = field(default_factory=dict)


def _counted(states: dict[str, Any]) -> int:
    """Events the states hold: the suite sends logins and opened tickets; late ones are counted as late."""
    total = 0
    for raw in states.values():
        state = state_from_json(raw)
        total += state.late_events + sum(b.logins + b.tickets_opened for b in state.days.values())
    return total


async def check_events(box: FaultSandbox, acknowledged: set[str]) -> EventFigures:
    """I1, from the topic itself: what ingest acknowledged must be there, and the scorer must hold its recompute."""
    records = await read_topic(box.settings, box.settings.topics.events)
    events: list[dict[str, Any]] = []
    partition_of: dict[str, int] = {}
    for r in records:
        try:
            decode_event(r.value)
        except Exception:  # poison: the dead-letter check's business
            continue
        events.append(json.loads(r.value))
        partition_of[events[-1]["account_id"]] = r.partition
    on_topic = {e["event_id"] for e in events}
    rules = WindowRules(key_features=load_scorecard(None).key_features)
    expected = recompute(events, rules)
    stored = await stored_states(box.engine)
    differing = sorted(a for a in set(expected) | set(stored) if expected.get(a) != stored.get(a))
    counted, want = _counted(stored), _counted(expected)
    missing = sorted(acknowledged - on_topic)
    short: Counter[int] = Counter()
    for a in differing:
        short[partition_of.get(a, -1)] += _counted({a: expected.get(a, {})}) - _counted({a: stored.get(a, {})})
    return EventFigures(
        sent=len(acknowledged),
        counted=counted,
        expected=want,
        lost=len(missing) + max(0, want - counted),
        duplicated=max(0, counted - want),
        accounts_differing=differing[:10],
        missing_from_topic=missing[:10],
        short_by_partition=dict(short),
    )


_MESSAGE_ID = re.compile(r"<delivery-(\d+)-")


async def check_deliveries(box: FaultSandbox, slack: SlackWebhookServer, mail: list[SmtpServer]) -> DeliveryFigures:
    async with box.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, channel, status FROM deliveries"))).all()
    status = Counter(r.status for r in rows)
    sent_rows = Counter(r.channel for r in rows if r.status == "sent")
    slack_texts = Counter((r.path, r.payload.get("text", "")) for r in slack.requests())
    mail_ids = Counter(
        m.group(1) for server in mail for msg in server.messages() if (m := _MESSAGE_ID.search(msg["Message-ID"] or ""))
    )
    received = sum(slack_texts.values()) + sum(mail_ids.values())
    duplicated = (sum(slack_texts.values()) - len(slack_texts)) + (sum(mail_ids.values()) - len(mail_ids))
    lost = max(0, sent_rows["slack"] - len(slack_texts)) + max(0, sent_rows["email"] - len(mail_ids))
    return DeliveryFigures(
        expected=status["sent"] + status["pending"] + status["dead"],
        sent=received,
        duplicated=duplicated,
        dead=status["dead"],
        pending=status["pending"],
        lost=lost,
        by_status=dict(status),
    )


async def check_dead_letters(box: FaultSandbox, poison: set[bytes]) -> tuple[int, list[str]]:
    """I4: the records on the dead-letter topic and what differs from the poison that was sent."""
    dead = await read_topic(box.settings, box.settings.topics.dead_letter)
    values = {bytes(r.value) for r in dead}
    problems = []
    if values - poison:
        problems.append(f"dead letters that were not poison: {sorted(values - poison)[:5]}")
    if poison - values:
        problems.append(f"poison missing from the dead letters: {sorted(poison - values)[:5]}")
    return len(dead), problems


async def distinct_signals(box: FaultSandbox) -> int:
    return len({json.loads(r.value)["signal_id"] for r in await read_topic(box.settings, box.settings.topics.signals)})
