"""``churnwatch backfill`` throughput against a raw producer, and how fast a scorer catches up afterwards.

    python -m bench.backfill [--events 2000000] [--rounds 3] [--shuffled] [--no-scorer]

1. Writes --events simulated events (services/demo/simulator.py's accounts and days) to a temporary
   .jsonl.gz, in event-time order (--shuffled: shuffled within windows of a few days, so the loader sorts).
2. Raw: the loader's own producer (``build_producer``: idempotent, acks=all, the same linger_ms, max_batch_size,
   request timeout), in this process with the loader's GC settings, ``send()``s the same records (same keys,
   same bytes as the loader sends, pre-encoded, partition pre-computed as the loader does, the same bound on
   unacknowledged records) to a fresh topic: events/s from start to the last acknowledgement.
3. Backfill: ``churnwatch backfill FILE --sandbox ...`` as a process, from the file to the sandbox's events
   topic (order scan, read, validate, produce): events/s over its wall-clock time including start-up, and
   the ratio to raw (target >= 0.5). Rounds alternate which side goes first; every round is printed with its
   own ratio, and the best of each side are compared.
4. Scorer catch-up (unless --no-scorer): a scorer process in the sandbox, its stored offsets polled until they
   reach the events topic's end offsets: events/s from its launch (and from its first stored batch).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from services.backfill.loader import build_producer
from services.backfill.settings import BackfillSettings
from services.backfill.sources import EventParser, event_rules
from services.demo.processes import REPO_ROOT, ServiceProcess
from services.demo.sandbox import private_sandbox
from services.demo.simulator import day_events, make_accounts
from shared.consumer_progress import end_offsets, scorer_group, stored_offsets
from shared.db import build_engine
from shared.kafka import TopicSpec, create_topics
from shared.service_app import tune_gc_for_batches
from shared.settings import CommonSettings
from tests.support.smtp_server import free_port

EVENTS_PER_ACCOUNT_DAY = 11  # about what the simulator's accounts produce on an average day


def write_history(path: Path, events: int, *, shuffled: bool = False, seed: int = 7) -> tuple[int, int, int]:
    """Simulated history ending yesterday, as JSON Lines (gzipped): (events, accounts, days) written.

    Each day's events are sorted by time, so the file is in event-time order; ``shuffled`` shuffles them
    within windows of three days instead (the loader has to sort). The one function to swap for a richer
    history generator."""
    accounts = make_accounts(max(10, events // 1500), seed=seed)
    days = max(1, -(-events // (len(accounts) * EVENTS_PER_ACCOUNT_DAY)))
    first = datetime.now(UTC).date() - timedelta(days=days * 2 + 1)
    rng, written, day_index, window = random.Random(seed), 0, 0, []
    with gzip.open(path, "wt", compresslevel=1) as out:
        while written < events and first + timedelta(days=day_index) < datetime.now(UTC).date():
            day = first + timedelta(days=day_index)
            todays = _day(accounts, day, day_index, days * 2, seed)[: events - written]
            written, day_index = written + len(todays), day_index + 1
            window += todays
            if not shuffled or day_index % 3 == 0 or written >= events:
                rng.shuffle(window) if shuffled else window.sort(key=lambda e: e["occurred_at"])
                out.writelines(json.dumps(e) + "\n" for e in window)
                window = []
    return written, len(accounts), day_index


def _day(accounts: list[Any], day: date, index: int, days: int, seed: int) -> list[dict[str, Any]]:
    return [e for a in accounts for e in day_events(a, day, day_index=index, days=days, seed=seed)]


def encoded_records(path: Path, settings: BackfillSettings) -> list[tuple[bytes, bytes]]:
    """(key, value) per event exactly as the loader sends them (its parser, received_at stamped)."""
    rules = event_rules(
        max_event_bytes=settings.max_event_bytes,
        max_future=timedelta(seconds=settings.max_event_future_seconds),
        max_age=None,
    )
    parser = EventParser(rules, lambda: datetime.now(UTC))
    out = []
    with gzip.open(path, "rb") as lines:
        for raw in lines:
            result = parser.line(raw)
            if isinstance(result, dict):
                raise ValueError(f"the generated history has a bad line: {result}")
            out.append((result[0].account_id.encode(), result[1]))
    return out


async def bench_raw(settings: BackfillSettings, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """events/s of a bare idempotent acks=all producer with the loader's batching, from start to all acked."""
    producer = build_producer(settings)  # the loader's settings, exactly
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner, partition_of = DefaultPartitioner(), dict[bytes, int]()
        in_flight: deque[Any] = deque()
        limit = settings.backfill_max_in_flight
        started = time.perf_counter()
        for key, value in records:
            partition = partition_of.get(key)
            if partition is None:
                partition = partition_of[key] = partitioner(key, partitions, partitions)
            in_flight.append(await producer.send(topic, value, key=key, partition=partition))
            if len(in_flight) >= limit:
                while len(in_flight) > limit // 2:
                    await in_flight.popleft()
        await producer.flush()
        while in_flight:
            await in_flight.popleft()
        return len(records) / (time.perf_counter() - started)
    finally:
        await producer.stop()


def bench_loader(path: Path, prefix: str, events: int) -> tuple[float, str]:
    """events/s of the backfill process over its wall-clock time (start-up included), and its summary line."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "backfill", str(path), "--sandbox", prefix],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"backfill exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    summary = next((line for line in done.stdout.splitlines() if line.startswith("done:")), done.stdout)
    if f"done: {events} events sent" not in summary:
        raise RuntimeError(f"backfill did not send all {events} events: {summary}")
    return events / elapsed, summary


async def bench_scorer_catch_up(settings: CommonSettings, env: dict[str, str], events: int) -> tuple[float, float]:
    """(events/s from launch, events/s from the first stored batch) until the stored offsets reach the end."""
    ends = await end_offsets(settings, settings.topics.events)
    group = scorer_group(settings)
    engine = build_engine(settings)
    scorer = ServiceProcess("scorer", {**env, "CHURNWATCH_LOG_LEVEL": "WARNING"}, free_port()).start()
    launched, first = time.perf_counter(), None
    try:
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            scorer.check_running()
            stored = await stored_offsets(engine, group, settings.topics.events)
            if first is None and stored:
                first = (time.perf_counter(), sum(stored.values()))
            if all(stored.get(p, 0) >= off for p, off in ends.items()):
                now = time.perf_counter()
                assert first is not None
                steady = (events - first[1]) / (now - first[0]) if first[1] < events else events / (now - launched)
                return events / (now - launched), steady
            await asyncio.sleep(0.05)  # polling the stored offsets, with a deadline
        raise TimeoutError("the scorer did not catch up within an hour")
    finally:
        scorer.stop()
        await engine.dispose()


async def run(events: int, rounds: int, shuffled: bool, with_scorer: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        path = Path(tmp) / "history.jsonl.gz"
        started = time.perf_counter()
        written, accounts, days = write_history(path, events, shuffled=shuffled)
        order = "shuffled within 3-day windows" if shuffled else "in time order"
        size = f"{path.stat().st_size / 1e6:.0f} MB gzipped"
        print(f"history: {written} events, {accounts} accounts, {days} days, {order}; {size}", end="")
        print(f", written in {time.perf_counter() - started:.0f} s")
        async with private_sandbox("bench") as (name, common):
            settings = BackfillSettings(topic_prefix=name.topic_prefix, database_schema=name.schema)
            await _throughput(path, settings, common, written, rounds)
            if with_scorer:
                total = written * rounds
                from_launch, steady = await bench_scorer_catch_up(common, name.env, total)
                print(f"scorer catch-up:        {from_launch:10.0f} events/s  ", end="")
                print(f"({total} events, launch to caught up; {steady:.0f} events/s from its first stored batch)")


async def _throughput(path: Path, settings: BackfillSettings, common: CommonSettings, events: int, rounds: int) -> None:
    raw_topic = f"{settings.topic_prefix}.raw"
    await create_topics(common, [TopicSpec(raw_topic, common.events_partitions)])
    records = encoded_records(path, settings)
    tune_gc_for_batches()  # the loader's GC settings; and the records held for the raw side are frozen out of it
    raw_rates: list[float] = []
    loader_rates: list[float] = []
    summary = ""
    for n in range(rounds):
        if n % 2 == 0:
            raw_rates.append(await bench_raw(settings, raw_topic, records))
        loader_rate, summary = await asyncio.to_thread(bench_loader, path, settings.topic_prefix, events)
        loader_rates.append(loader_rate)
        if n % 2 == 1:
            raw_rates.append(await bench_raw(settings, raw_topic, records))
        first = "raw" if n % 2 == 0 else "backfill"
        print(f"round {n + 1}: raw {raw_rates[-1]:8.0f} events/s, backfill {loader_rate:8.0f} events/s", end="")
        print(f", ratio {loader_rate / raw_rates[-1]:.2f} ({first} first)", flush=True)
    del records
    gc.unfreeze()
    _report(settings, raw_rates, loader_rates, summary, rounds)


def _report(settings: BackfillSettings, raw: list[float], loader: list[float], summary: str, rounds: int) -> None:
    batching = f"linger_ms={settings.backfill_linger_ms}, max_batch_size={settings.backfill_batch_bytes}"
    print(f"loader's own summary: {summary}")
    print(f"raw aiokafka producer:  {max(raw):10.0f} events/s  (idempotent, acks=all, {batching}; best of {rounds})")
    print(f"backfill end to end:    {max(loader):10.0f} events/s  (file -> validate -> order -> Kafka, wall clock)")
    print(f"ratio backfill/raw:     {max(loader) / max(raw):10.2f}  (target >= 0.5)")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backfill", description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="raw and backfill take turns; best of each")
    parser.add_argument("--shuffled", action="store_true", help="history out of time order: the loader sorts it")
    parser.add_argument("--no-scorer", dest="scorer", action="store_false", help="skip the scorer catch-up")
    args = parser.parse_args(argv)
    asyncio.run(run(args.events, args.rounds, args.shuffled, args.scorer))


if __name__ == "__main__":
    main(sys.argv[1:])
