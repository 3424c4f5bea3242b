"""Sustained events/s through ingest's batch endpoint (acks=all) beside a raw aiokafka producer sending the
same payloads to the same broker in the same run: python -m bench.ingest [--events N] [--batch N] [--rounds N].

The two take turns for ``--rounds`` rounds (which goes first alternates), so a neighbour's burst of CPU on this
shared machine hits both sides alike; the best round of each side and the median of the per-round ratios are
printed.

Overload mode, ``--connections N`` (e.g. 1000, ``--batch 50 --seconds 30``): N clients at once, each on its own
keep-alive connection posting batches back to back and honouring Retry-After, against ingest without a bound on
requests in flight ("before") and with ``--max-in-flight`` (default: ingest's default) ("after"); prints accepted
requests/s and events/s, shed answers, and p50/p99 client latency of accepted and of shed requests
(bench/ingest_overload.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.demo.processes import ServiceProcess
from services.demo.sandbox import private_sandbox
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from shared.settings import CommonSettings
from tests.support.smtp_server import free_port

CONCURRENCY = 8


def make_batches(events: int, batch: int) -> list[list[dict[str, Any]]]:
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    all_events = [
        {
            "kind": "usage",
            "action": "feature_used",
            "event_id": f"b-{i}",
            "account_id": f"acct-{i % 500}",
            "user_id": f"u{i % 40}",
            "feature": "report_export",
            "quantity": 1,
            "occurred_at": at,
            "properties": {"plan": "pro", "region": "eu"},
        }
        for i in range(events)
    ]
    return [all_events[i : i + batch] for i in range(0, events, batch)]


async def _in_parallel(work: list[Any], run: Any) -> float:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for w in work:
        queue.put_nowait(w)

    async def worker() -> None:
        while not queue.empty():
            await run(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def bench_raw(settings: CommonSettings, batches: list[list[dict[str, Any]]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:

        async def send(batch: list[dict[str, Any]]) -> None:
            futures = [
                await producer.send(settings.topics.events, json.dumps(e).encode(), key=e["account_id"].encode())
                for e in batch
            ]
            await asyncio.gather(*futures)

        return await _in_parallel(batches, send)
    finally:
        await producer.stop()


async def bench_ingest(url: str, key: str, batches: list[list[dict[str, Any]]]) -> float:
    bodies = [json.dumps({"events": b}).encode() for b in batches]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:

        async def post(body: bytes) -> None:
            resp = await client.post("/v1/events", content=body)
            if resp.status_code != 202:
                raise RuntimeError(f"ingest answered {resp.status_code}: {resp.text[:300]}")

        return await _in_parallel(bodies, post)


async def measure_rounds(
    settings: CommonSettings, url: str, key: str, batches: list[list[dict[str, Any]]], rounds: int
) -> list[tuple[float, float]]:
    """(raw seconds, ingest seconds) per round; odd rounds send through ingest first."""
    timings = []
    for n in range(rounds):
        if n % 2:
            ingest_s = await bench_ingest(url, key, batches)
            raw_s = await bench_raw(settings, batches)
        else:
            raw_s = await bench_raw(settings, batches)
            ingest_s = await bench_ingest(url, key, batches)
        timings.append((raw_s, ingest_s))
    return timings


def report(events: int, batch: int, timings: list[tuple[float, float]]) -> None:
    print(f"events: {events} in batches of {batch}, {CONCURRENCY} concurrent requests, acks=all, idempotent")
    for n, (raw_s, ingest_s) in enumerate(timings, 1):
        print(
            f"round {n}: raw {events / raw_s:8.0f} events/s, ingest {events / ingest_s:8.0f} events/s, "
            f"ratio {raw_s / ingest_s:.2f}"
        )
    raw_best, ingest_best = events / min(t[0] for t in timings), events / min(t[1] for t in timings)
    print(f"raw aiokafka producer: {raw_best:10.0f} events/s (best round)")
    print(f"ingest POST /v1/events: {ingest_best:9.0f} events/s (best round)")
    median = statistics.median(raw_s / ingest_s for raw_s, ingest_s in timings)
    print(f"ratio ingest/raw: {ingest_best / raw_best:.2f} best to best, {median:.2f} median of rounds (target >= 0.5)")


async def run(events: int, batch: int, rounds: int) -> None:
    async with private_sandbox("bench", events_partitions=6) as (name, settings):
        key = await issue_key(settings, name="bench", scopes=frozenset({Scope.WRITE_EVENTS}))
        env = {
            **name.env,
            "CHURNWATCH_LOG_LEVEL": "WARNING",
            "CHURNWATCH_RATE_LIMIT_PER_SECOND": "100000",
            "CHURNWATCH_RATE_LIMIT_BURST": "100000",
        }
        ingest = ServiceProcess("ingest", env, free_port()).start()
        try:
            await asyncio.to_thread(ingest.wait_ready, 60)
            warmup = make_batches(batch * CONCURRENCY, batch)
            await bench_ingest(ingest.url, key, warmup)
            await bench_raw(settings, warmup)
            timings = await measure_rounds(settings, ingest.url, key, make_batches(events, batch), rounds)
        finally:
            ingest.stop()
    report(events, batch, timings)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, help="overload mode: this many concurrent clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="overload mode: how long each side runs")
    parser.add_argument("--max-in-flight", type=int, help="overload mode: ingest's limit (default: its default)")
    args = parser.parse_args(argv)
    if args.connections:
        from bench.ingest_overload import run_overload

        asyncio.run(run_overload(args.connections, args.batch, args.seconds, args.max_in_flight))
        return
    asyncio.run(run(args.events, args.batch, args.rounds))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
