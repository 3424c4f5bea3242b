"""``churnwatch backfill`` as a process against the real Kafka, into a test sandbox: every good event exactly once,
per account in event-time order, on the partition ingest would choose; rejects named; profiles published; a file
that is not the schema sends nothing; Ctrl-C flushes and says how far it got."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.demo.processes import REPO_ROOT
from shared.consumer_progress import end_offsets
from shared.events import decode_event
from tests.integration.conftest import Sandbox
from tests.support.polling import await_until
from tests.support.scorer_stream import read_topic

pytestmark = pytest.mark.integration

START = datetime(2026, 6, 1, tzinfo=UTC)
ACCOUNTS = [f"acct-{i}" for i in range(7)]


def _at(account: int, occurred_at: str) -> dict[str, str]:
    return {"account_id": f"a{account}", "occurred_at": occurred_at}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.cli", "backfill", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)


def _history(n: int, seed: int = 4) -> list[dict[str, Any]]:
    """n logins over 40 days for a few accounts, shuffled: sent as read, the scorer would drop the late ones."""
    rng = random.Random(seed)
    events = [
        {"kind": "usage", "action": "login", "event_id": f"e{i}", "account_id": ACCOUNTS[i % len(ACCOUNTS)]}
        | {"occurred_at": (START + timedelta(minutes=rng.randrange(40 * 24 * 60))).isoformat(), "user_id": "u1"}
        for i in range(n)
    ]
    rng.shuffle(events)
    return events


def _write_unsorted_with_bad_lines(path: Path, events: list[dict[str, Any]]) -> dict[int, str]:
    """Events as JSON lines, with a bad line after every 50th; the bad lines' numbers -> the field at fault."""
    bad: dict[int, str] = {}
    lines: list[str] = []
    for i, event in enumerate(events):
        lines.append(json.dumps(event))
        if i % 50 == 49:
            broken = {**event, "event_id": f"bad-{i}", "occurred_at": "last tuesday"}
            lines.append(json.dumps(broken))
            bad[len(lines)] = "occurred_at"
    lines.insert(10, "{not json")
    bad = {(n + 1 if n > 10 else n): field for n, field in bad.items()} | {11: ""}
    path.write_text("\n".join(lines) + "\n")
    return bad


async def test_unsorted_history_with_bad_lines_lands_once_in_order_on_ingests_partitions(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    events = _history(600)
    bad = _write_unsorted_with_bad_lines(tmp_path / "history.jsonl", events)
    csv_events = [
        {"account_id": ACCOUNTS[i % 3], "ts": (START + timedelta(days=i % 40, hours=9)).isoformat(), "id": f"c{i}"}
        for i in range(80)
    ]
    rows = "".join(f"{e['account_id']},{e['ts']},{e['id']}\n" for e in csv_events)
    (tmp_path / "logins.csv").write_text("acct,ts,id\n" + rows)
    profiles = [{"account_id": a, "name": f"Account {a}", "arr": 1000.0} for a in ACCOUNTS]
    (tmp_path / "accounts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in profiles))

    mapping = ["--map", "account_id=acct", "--map", "occurred_at=ts", "--map", "event_id=id"]
    done = _cli(
        *(str(tmp_path / name) for name in ("history.jsonl", "logins.csv")),
        *("--accounts", str(tmp_path / "accounts.jsonl"), "--sandbox", sandbox.settings.topic_prefix),
        *mapping,
        *("--kind", "usage", "--action", "login"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"done: {len(events) + len(csv_events)} events sent" in done.stdout
    assert f"{len(bad)} rejected" in done.stdout

    records = await read_topic(sandbox.settings, sandbox.settings.topics.events)
    ids = Counter(decode_event(r.value).event_id for r in records)
    assert ids == Counter([e["event_id"] for e in events] + [e["id"] for e in csv_events]), "each good event once"
    partitions = sorted({r.partition for r in records} | set(range(3)))
    by_account: dict[str, list[Any]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode_event(r.value)
        assert r.key == event.account_id.encode()
        assert r.partition == DefaultPartitioner()(r.key, partitions, partitions), "not ingest's partition"
        assert event.received_at is not None
        by_account[event.account_id].append(event.occurred_at)
    for account, times in by_account.items():
        assert times == sorted(times), f"{account}'s events are not in event-time order"

    rejects = [json.loads(line) for line in (tmp_path / "history.jsonl.rejects.jsonl").read_text().splitlines()]
    assert {r["line"]: r["path"] for r in rejects} == bad
    assert all(r["file"] == str(tmp_path / "history.jsonl") and r["reason"] for r in rejects)

    accounts = await read_topic(sandbox.settings, sandbox.settings.topics.accounts)
    assert sorted(json.loads(r.value)["account_id"] for r in accounts) == ACCOUNTS


async def test_a_file_that_is_not_the_schema_stops_with_one_message_and_sends_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    orders = tmp_path / "orders.jsonl"
    orders.write_text("".join(json.dumps({"order_id": i, "total": 9.5}) + "\n" for i in range(200)))
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(e) + "\n" for e in _history(20)))

    done = _cli(str(good), str(orders), "--sandbox", sandbox.settings.topic_prefix)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{orders} does not look like Churnwatch events" in done.stderr
    assert "nothing was sent" in done.stderr
    assert done.stderr.count("churnwatch backfill:") == 1 and "Traceback" not in done.stderr
    assert sum((await end_offsets(sandbox.settings, sandbox.settings.topics.events, 3)).values()) == 0


async def test_ctrl_c_flushes_what_is_in_flight_and_exits_130(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as history:
        for i in range(400_000):
            at = (START + timedelta(seconds=i * 5)).isoformat()
            login = {"kind": "usage", "action": "login", "event_id": f"b{i}"} | _at(i % 50, at)
            history.write(json.dumps(login) + "\n")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "services.cli", "backfill", str(path), "--sandbox", sandbox.settings.topic_prefix),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def some_sent() -> bool:
            return sum((await end_offsets(sandbox.settings, sandbox.settings.topics.events, 3)).values()) > 1000

        await await_until(some_sent, within=60, what="the backfill to send its first events", interval=0.05)
        proc.send_signal(signal.SIGINT)
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
    out, err = raw_out.decode(), raw_err.decode()
    assert proc.returncode == 130, out + err
    match = re.search(r"^interrupted: (\d+) events sent", out, re.MULTILINE)
    assert match, out + err
    on_topic = sum((await end_offsets(sandbox.settings, sandbox.settings.topics.events, 3)).values())
    assert 1000 < int(match[1]) == on_topic < 400_000, "what it says it sent is what is on the topic"
    assert re.search(rf"{re.escape(str(path))}: read to line \d+", out)
    assert "every event up to occurred_at" in out
