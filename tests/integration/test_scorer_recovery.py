"""Exactly-once effect: a scorer killed with SIGKILL mid-stream, and two scorers sharing a group where one is
killed, both end with state equal to a from-scratch recompute, and raise no signal twice."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text

from services.demo.processes import ServiceProcess, running
from services.scorer.windows import WindowRules
from shared.consumer_progress import caught_up, stored_offsets
from shared.signals import RiskSignal, Severity
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.scorer_stream import (
    account_events,
    produce,
    read_topic,
    recompute,
    seen_event_count,
    stored_states,
)
from tests.support.smtp_server import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def scorers(sandbox: Sandbox) -> Iterator[list[ServiceProcess]]:
    env = {**sandbox.env, "CHURNWATCH_MAX_BATCH": "50", "CHURNWATCH_LOG_LEVEL": "WARNING"}
    env["CHURNWATCH_CHECKPOINT_EVENTS"] = "500"  # many checkpoints in the stream: a kill lands between two
    procs = [ServiceProcess("scorer", env, free_port()) for _ in range(2)]
    yield procs
    for p in procs:
        p.stop()


async def progress(sandbox: Sandbox) -> int:
    s = sandbox.settings
    return sum((await stored_offsets(sandbox.engine, f"{s.topic_prefix}.scorer", s.topics.events)).values())


def assert_no_signal_twice(records: list[Any]) -> None:
    """Same id means the same signal (a republished copy the alerter drops); and per account and type, a
    condition is raised once until it recovers (a new raise only when the severity rises)."""
    by_id: dict[str, dict[str, Any]] = {}
    sequence: dict[tuple[str, str], list[RiskSignal]] = defaultdict(list)
    for r in records:
        payload = json.loads(r.value)
        if payload["signal_id"] in by_id:
            assert by_id[payload["signal_id"]] == payload
            continue
        by_id[payload["signal_id"]] = payload
        s = RiskSignal.model_validate(payload)
        sequence[(s.account_id, s.signal_type)].append(s)
    for key, signals in sequence.items():
        raised: Severity | None = None
        for s in signals:
            if s.recovered:
                assert raised is not None, f"{key}: recovery without a raise"
                raised = None
            else:
                assert raised is None or s.severity.rank > raised.rank, f"{key}: raised twice: {signals}"
                raised = s.severity


async def test_kill_9_mid_stream_then_restart_equals_a_recompute(
    sandbox: Sandbox, scorers: list[ServiceProcess]
) -> None:
    events = [e for a in range(40) for e in account_events(f"acct-{a:03d}")]
    events += events[::17]  # duplicates: client retries
    await produce(sandbox.settings, events, raw=[b"{not json", b'{"kind": "usage"}'])
    total = len(events) + 2
    scorer = scorers[0]
    for fraction in (0.15, 0.5):
        scorer.start()
        await await_until(
            partial(_past, sandbox, total * fraction), within=90, what=f"{fraction:.0%} consumed", interval=0.05
        )
        scorer.kill()  # SIGKILL: no flush, no shutdown hook
        assert await progress(sandbox) < total, "the scorer finished before the kill: make the stream longer"
    scorer.start()
    await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=90, what="the scorer caught up")

    expected = recompute(events, WindowRules(key_features=frozenset({"dashboards", "reports", "automation"})))
    assert await stored_states(sandbox.engine) == expected
    assert await seen_event_count(sandbox.engine) == len({(e["account_id"], e["event_id"]) for e in events})
    await await_until(lambda: _outbox_empty(sandbox), within=30, what="the signal outbox to drain")
    signals = await read_topic(sandbox.settings, sandbox.settings.topics.signals)
    assert signals, "sliding accounts must raise signals"
    assert_no_signal_twice(signals)
    dead = await read_topic(sandbox.settings, sandbox.settings.topics.dead_letter)
    assert {r.value for r in dead} == {b"{not json", b'{"kind": "usage"}'}  # at least once
    assert all(dict(r.headers)["churnwatch.reason"].startswith(b"invalid event") for r in dead)


async def _past(sandbox: Sandbox, n: float) -> bool:
    return await progress(sandbox) >= n


async def _outbox_empty(sandbox: Sandbox) -> bool:
    async with sandbox.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM signal_outbox"))).scalar_one()) == 0


async def test_two_scorers_split_partitions_and_survive_losing_one(
    sandbox: Sandbox, scorers: list[ServiceProcess]
) -> None:
    accounts = [f"acct-{a:03d}" for a in range(30)]
    per_account = {a: account_events(a) for a in accounts}
    first = [e for a in accounts for e in per_account[a][: len(per_account[a]) // 2]]
    second = [e for a in accounts for e in per_account[a][len(per_account[a]) // 2 :]]
    for p in scorers:
        p.start()
    for p in scorers:
        p.wait_ready(60)
    await produce(sandbox.settings, first)
    await await_until(lambda: _past(sandbox, len(first) * 0.3), within=90, what="both scorers started", interval=0.05)
    scorers[0].kill()
    await produce(sandbox.settings, second + first[::11])  # more events, and some duplicates
    await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=120, what="the survivor caught up")

    all_events = first + second + first[::11]
    assert await stored_states(sandbox.engine) == recompute(
        all_events, WindowRules(key_features=frozenset({"dashboards", "reports", "automation"}))
    )
    assert await seen_event_count(sandbox.engine) == len({(e["account_id"], e["event_id"]) for e in all_events})


async def test_signals_of_one_batch_reach_the_topic_in_event_time_order(sandbox: Sandbox) -> None:
    """One polled batch closes many days of each account: its signals must still be published in the order the
    days closed, or the alerter sees an escalation before the warning it escalates."""
    events = [e for a in range(40) for e in account_events(f"acct-{a:03d}")]
    await produce(sandbox.settings, events)
    env = {**sandbox.env, "CHURNWATCH_MAX_BATCH": "100000", "CHURNWATCH_LOG_LEVEL": "WARNING"}
    with running({"scorer": free_port()}, env):
        await await_until(lambda: caught_up(sandbox.engine, sandbox.settings), within=120, what="scored")
        signals = await await_until(
            lambda: read_topic(sandbox.settings, sandbox.settings.topics.signals), within=60, what="signals"
        )
    times: dict[str, list[str]] = defaultdict(list)
    for r in signals:
        payload = json.loads(r.value)
        times[payload["account_id"]].append(payload["occurred_at"])
    assert sum(len(t) > 1 for t in times.values()) >= 5, "several accounts must raise several signals"
    assert all(t == sorted(t) for t in times.values()), {a: t for a, t in times.items() if t != sorted(t)}
    assert_no_signal_twice(signals)
