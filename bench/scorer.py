"""Scorer throughput, state size and restart time, against the local Kafka and PostgreSQL.

    python -m bench.scorer [--events 200000] [--accounts 1000] [--instances 2] [--restart-accounts 100000]

1. Produces --events events for --accounts accounts to a fresh topic (private prefix and schema).
2. Raw: an AIOKafkaConsumer reads the whole topic with getmany, decoding nothing (best of 3 rounds); and
   once more decoding every value with the event schema.
3. Scorer: a real scorer process (`churnwatch scorer`: decode, dedup, windows, score, signals, state + offsets
   in one PostgreSQL transaction per polled batch) over the same topic: events/s end to end, and the ratio to
   raw (target >= 0.5). Both sides are timed in their steady state: raw from its first fetched batch, the
   scorer from its first stored batch (process start and group join left out) to the end of the topic.
4. The in-memory ceiling: the same events decoded, folded and scored in this process with no PostgreSQL and
   no Kafka, which any scorer written in Python does per event at least: events/s and its ratio to raw. If
   it is under 0.5, no persistence design meets the target on this machine. Once with the packaged churn-risk
   model and once without: the model's cost per day close.
5. Scale-out: --instances scorer processes in one consumer group over a fresh copy of the topic.
6. State per account: len(compact JSON) and pg_column_size of state + history (target <= 2 KB).
7. Restart: account_health filled to --restart-accounts rows (bulk insert), a scorer process started; time
   until /readyz is 200 and until a new event is processed (target < 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.demo.processes import ServiceProcess
from services.demo.sandbox import private_sandbox
from services.scorer.app import scoring_config
from services.scorer.evaluate import AccountRecord, ScoringConfig, evaluate_account, record_to_row
from services.scorer.risk_model import default_model_path, load_model
from services.scorer.settings import ScorerSettings
from shared.consumer_progress import end_offsets, stored_offsets
from shared.db import build_engine
from shared.events import Event, decode_event
from shared.service_app import tune_gc_for_batches
from tests.support.scorer_stream import seen_event_count
from tests.support.smtp_server import free_port

END = datetime(2026, 11, 20, tzinfo=UTC)


def _events(n: int, accounts: int) -> list[tuple[bytes, bytes]]:
    """n events spread over accounts and 35 days in event-time order, accounts interleaved as in a live stream
    (so a polled batch touches many accounts with a few events each); tickets get resolved."""
    per_account = max(1, n // accounts)
    out = []
    for i in range(per_account):
        for a in range(accounts):
            aid = f"acct-{a:06d}"
            at = END - timedelta(days=35) + timedelta(minutes=i * 35 * 24 * 60 // per_account)
            kind = i % 10
            event: dict[str, Any] = {"event_id": f"{aid}-{i}", "account_id": aid, "occurred_at": at.isoformat()}
            if kind < 6:
                event |= {"kind": "usage", "action": "login", "user_id": f"{aid}-u{i % 13}"}
            elif kind < 9:
                event |= {"kind": "usage", "action": "feature_used", "user_id": f"{aid}-u{i % 13}"}
                event |= {"feature": ["reports", "alerts", "exports", "sso"][i % 4], "quantity": 3}
            elif i % 20 == 9:
                event |= {"kind": "ticket", "action": "opened", "ticket_id": f"{aid}-T{i}"}
            else:  # the ticket opened ten events ago is resolved
                event |= {"kind": "ticket", "action": "resolved", "ticket_id": f"{aid}-T{i - 10}", "csat": 4}
            out.append((aid.encode(), json.dumps(event).encode()))
    return out


async def _produce(settings: ScorerSettings, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=20, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(settings.topics.events, key=k, value=v) for k, v in records]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def _raw(settings: ScorerSettings, total: int, *, decode: bool = False) -> float:
    """events/s of a bare consumer, from its first fetched batch (connection set-up left out) to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(settings.topics.events, p) for p in range(settings.events_partitions)])
        launched, first, seen = time.perf_counter(), (0.0, 0), 0
        while seen < total:
            for recs in (await consumer.getmany(timeout_ms=1000, max_records=settings.max_batch)).values():
                if not seen:
                    first = (time.perf_counter(), len(recs))
                seen += len(recs)
                if decode:
                    for r in recs:
                        decode_event(r.value)
        return _steady_rate(total, launched, first)
    finally:
        await consumer.stop()


async def _scorers(settings: ScorerSettings, engine: AsyncEngine, env: dict[str, str], instances: int) -> float:
    """events/s of ``instances`` scorer processes in one group, from their first stored batch to the topic's end."""
    ends = await end_offsets(settings, settings.topics.events)  # the topic is complete: read once
    group = f"{settings.topic_prefix}.scorer"
    scorers = [
        ServiceProcess("scorer", {**env, "CHURNWATCH_LOG_LEVEL": "WARNING"}, free_port()).start()
        for _ in range(instances)
    ]
    launched = time.perf_counter()
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for scorer in scorers:
                scorer.check_running()
            stored = await stored_offsets(engine, group, settings.topics.events)
            if first is None and stored:
                first = (time.perf_counter(), sum(stored.values()))
            if first is not None and _reached(stored, ends):
                return _steady_rate(sum(ends.values()), launched, first)
            await asyncio.sleep(0.01)  # polling the stored offsets, with a deadline
        raise TimeoutError(f"{instances} scorer(s) did not reach the end of the topic in 600 s")
    finally:
        for scorer in scorers:
            scorer.stop()


def _steady_rate(total: int, launched: float, first: tuple[float, int]) -> float:
    """events/s after the first batch (at, how many), leaving start-up out; from the launch if the first batch
    was the whole topic (a tiny run)."""
    at, done = first
    if done < total:
        return (total - done) / (time.perf_counter() - at)
    return total / (time.perf_counter() - launched)


def _in_memory(
    settings: ScorerSettings, records: list[tuple[bytes, bytes]], config: ScoringConfig
) -> tuple[float, int]:
    """Decode, fold, score and encode the rows for the same events, per batch of max_batch as the scorer
    polls them, with the accounts' records kept in memory: the scorer's own work with no I/O at all.
    Returns events/s and the number of day closes."""
    kept: dict[str, AccountRecord] = {}
    closes = 0
    started = time.perf_counter()
    for at in range(0, len(records), settings.max_batch):
        by_account: dict[str, list[Event]] = defaultdict(list)
        for _, value in records[at : at + settings.max_batch]:
            event = decode_event(value)
            by_account[event.account_id].append(event)
        for account_id, events in by_account.items():
            evaluation = evaluate_account(account_id, kept.get(account_id, AccountRecord()), events, None, config)
            kept[account_id] = evaluation.record
            closes += len(evaluation.closes)
            record_to_row(evaluation.record, evaluation.health)
    return len(records) / (time.perf_counter() - started), closes


async def _scale_out(records: list[tuple[bytes, bytes]], instances: int) -> float:
    async with private_sandbox("bench") as (name, _):
        settings = ScorerSettings(topic_prefix=name.topic_prefix, database_schema=name.schema)
        engine = build_engine(settings)
        try:
            await _produce(settings, records)
            return await _scorers(settings, engine, name.env, instances)
        finally:
            await engine.dispose()


def _reached(stored: dict[int, int], ends: dict[int, int]) -> bool:
    return all(stored.get(p, 0) >= off for p, off in ends.items())


async def _state_size(engine: AsyncEngine) -> tuple[float, int, float, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT avg(octet_length(state::text) + octet_length(history::text)),"
                    " max(octet_length(state::text) + octet_length(history::text)),"
                    " avg(pg_column_size(state) + pg_column_size(history)),"
                    " max(pg_column_size(state) + pg_column_size(history)) FROM account_health"
                )
            )
        ).one()
    return float(row[0]), int(row[1]), float(row[2]), int(row[3])


async def _fill(engine: AsyncEngine, accounts: int) -> None:
    """Bulk-copy a real account's row to ``accounts`` rows, already evaluated at the clock."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO account_health (account_id, state, score, band, components, active_signals,"
                " explanation, as_of, history, partition, scorecard)"
                " SELECT 'bulk-' || g, h.state, h.score, h.band, h.components, h.active_signals, h.explanation,"
                " h.as_of, h.history, NULL, h.scorecard"
                " FROM generate_series(1, :n) g, (SELECT * FROM account_health LIMIT 1) h"
                " ON CONFLICT DO NOTHING"
            ),
            {"n": accounts},
        )


async def _restart(settings: ScorerSettings, engine: AsyncEngine, env: dict[str, str]) -> tuple[float, float]:
    scorer = ServiceProcess("scorer", {**env, "CHURNWATCH_LOG_LEVEL": "WARNING"}, free_port())
    seen_before = await seen_event_count(engine)
    started = time.perf_counter()
    scorer.start()
    try:
        scorer.wait_ready(60)
        ready = time.perf_counter() - started
        event = {"kind": "usage", "action": "login", "event_id": "restart-probe", "account_id": "acct-000000"}
        event["occurred_at"] = END.isoformat()
        await _produce(settings, [(b"acct-000000", json.dumps(event).encode())])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if await seen_event_count(engine) > seen_before:
                return ready, time.perf_counter() - started
            await asyncio.sleep(0.02)  # polling, with a deadline
        raise TimeoutError("the restarted scorer did not process the probe event within 60 s")
    finally:
        scorer.stop()


async def run(events: int, accounts: int, restart_accounts: int, instances: int) -> None:
    tune_gc_for_batches()  # as in the scorer process: raw, ceiling and scorer all run with the same GC
    records = _events(events, accounts)
    async with private_sandbox("bench") as (name, _):
        settings = ScorerSettings(topic_prefix=name.topic_prefix, database_schema=name.schema)
        engine = build_engine(settings)
        try:
            await _produce(settings, records)
            await _throughput(settings, engine, name.env, records, accounts, instances)
            await _state_and_restart(settings, engine, name.env, restart_accounts)
        finally:
            await engine.dispose()


async def _throughput(
    settings: ScorerSettings,
    engine: AsyncEngine,
    env: dict[str, str],
    records: list[tuple[bytes, bytes]],
    accounts: int,
    instances: int,
) -> None:
    raw = max([await _raw(settings, len(records)) for _ in range(3)])
    decoded = await _raw(settings, len(records), decode=True)
    scored = await _scorers(settings, engine, env, 1)
    ceiling, closes = _in_memory(settings, records, scoring_config(settings, load_model(default_model_path())))
    no_model, _ = _in_memory(settings, records, scoring_config(settings))
    model_us = (len(records) / ceiling - len(records) / no_model) / max(1, closes) * 1e6
    print(f"events: {len(records)} for {accounts} accounts, {settings.events_partitions} partitions")
    print(f"raw aiokafka consumer:   {raw:10.0f} events/s  (best of 3)")
    print(f"raw + pydantic decode:   {decoded:10.0f} events/s")
    print(f"scorer end to end:       {scored:10.0f} events/s  (one scorer process)")
    print(f"ratio scorer/raw:        {scored / raw:10.2f}  (target >= 0.5)")
    print(f"in-memory ceiling:       {ceiling:10.0f} events/s  (decode + windows + score, no I/O)")
    print(f"ratio ceiling/raw:       {ceiling / raw:10.2f}  (the most any persistence design could reach)")
    print(f"ceiling without model:   {no_model:10.0f} events/s  (the churn-risk estimate runs once per day close)")
    print(f"churn-risk estimate:     {model_us:10.1f} us per day close ({closes} closes, none per event)")
    if instances > 1:
        many = await _scale_out(records, instances)
        print(f"{instances} scorer processes:     {many:10.0f} events/s  (one group, a fresh copy of the topic)")
        print(f"scale-out factor:        {many / scored:10.2f}  ({os.cpu_count()} cores, with Kafka and PostgreSQL)")


async def _state_and_restart(
    settings: ScorerSettings, engine: AsyncEngine, env: dict[str, str], restart_accounts: int
) -> None:
    avg_json, max_json, avg_pg, max_pg = await _state_size(engine)
    print(f"state per account (JSON text, state+history): avg {avg_json:.0f} B, max {max_json} B")
    print(f"state per account (pg_column_size):           avg {avg_pg:.0f} B, max {max_pg} B  (target <= 2048)")
    await _fill(engine, restart_accounts)
    ready, live = await _restart(settings, engine, env)
    print(
        f"restart with {restart_accounts} accounts: /readyz 200 after {ready:.2f} s,"
        f" new event processed after {live:.2f} s  (target < 10 s)"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--instances", type=int, default=2, help="scorer processes for the scale-out figure")
    parser.add_argument("--restart-accounts", type=int, default=100_000)
    args = parser.parse_args(argv)
    asyncio.run(run(args.events, args.accounts, args.restart_accounts, args.instances))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
