"""Scorer throughput, state size, memory and restart time, against the local Kafka and PostgreSQL.

    python -m bench.scorer [--events 500000] [--accounts 1000,10000] [--instances 2] [--restart-accounts 100000]
                           [--ceiling-only] [--same-shape]
    python -m bench.scorer --ceiling-only    # step 4 alone, in a minute or two: no Kafka, no PostgreSQL

For each account count (the same number of events each, so the bigger book has fewer events per account and
about ten times the day closes per event; ``--same-shape`` keeps the events per account instead, so that only
the number of accounts varies; ``--restart-accounts 0`` leaves out step 7):
1. Produces --events events to a fresh topic (private prefix and schema).
2. Raw: an AIOKafkaConsumer reads the whole topic with getmany, decoding nothing (best of 3 rounds); and
   once more decoding every value with the published pydantic schema, and with the scorer's msgspec decoder.
3. Scorer: a real scorer process (`churnwatch scorer`: decode, dedup, windows, score, signals in memory; state,
   offsets and signals checkpointed to PostgreSQL) over the same topic: events/s end to end. Timed from the
   first events it folded (its metrics; process start and group join left out) until the offsets its
   checkpoints stored reach the end of the topic.
4. The in-memory ceiling (each in-memory figure the best of ``PASSES`` folds, as a noisy machine gives): the
   same events decoded, deduplicated, folded and scored in this process with no PostgreSQL and no Kafka
   (``ResidentAccounts``, which the scorer runs), with no rows encoded: the most any persistence design could
   reach; and "as before" (each touched account's row encoded per polled batch, as
   the per-batch scorer did). With and without the churn-risk model: its cost per day close.
5. Then: the scorer's ratio to its ceiling, the big book's rate against the small one's, bytes per account
   (stored: JSON text and pg_column_size; in memory: tracemalloc over the resident accounts).
6. Scale-out: --instances scorer processes in one group over a fresh copy of the first stream, and how many
   accounts each holds in memory (each holds its own partitions' accounts only).
7. Restart: account_health filled to --restart-accounts rows (bulk insert), a scorer process started; time
   until /readyz is 200 and until a new event is processed (target < 10 s); then one event for every one of
   those accounts, all resident (CHURNWATCH_MAX_RESIDENT_ACCOUNTS raised for it): the process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.demo.processes import ServiceProcess
from services.demo.sandbox import private_sandbox
from services.scorer.app import scoring_config
from services.scorer.decode import ScorerEvent, decode_scorer_event
from services.scorer.evaluate import ScoringConfig
from services.scorer.resident import Loaded, Pending, ResidentAccounts
from services.scorer.risk_model import default_model_path, load_model
from services.scorer.settings import ScorerSettings
from shared.consumer_progress import end_offsets, stored_offsets
from shared.db import build_engine
from shared.events import decode_event
from shared.service_app import tune_gc_for_batches
from tests.support.scorer_stream import seen_event_count
from tests.support.smtp_server import free_port

END = datetime(2026, 11, 20, tzinfo=UTC)
Records = list[tuple[bytes, bytes]]


def _events(n: int, accounts: int) -> Records:
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


async def _produce(settings: ScorerSettings, records: Records) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=20, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(settings.topics.events, key=k, value=v) for k, v in records]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def _raw(settings: ScorerSettings, total: int, *, decode: Any = None) -> float:
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
                if decode is not None:
                    for r in recs:
                        decode(r.value)
        return _steady_rate(total, launched, first)
    finally:
        await consumer.stop()


async def _metric(scorer: ServiceProcess, series: str) -> int:
    """A sample of the scorer's /metrics (``series`` as written there, labels and all); -1 if not there (yet)."""
    try:
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{scorer.url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return -1  # not listening yet
    found = re.search("^" + re.escape(series) + r" ([0-9.e+]+)$", body, re.M)
    return int(float(found.group(1))) if found else -1


async def _resident_of(scorer: ServiceProcess) -> int:
    return await _metric(scorer, "churnwatch_scorer_resident_accounts")


async def _folded(scorers: list[ServiceProcess]) -> int:
    """Events counted so far by the scorers (nothing of them need be checkpointed yet)."""
    return sum([max(0, await _metric(s, 'churnwatch_scorer_events_total{outcome="counted"}')) for s in scorers])


async def _scorers(
    settings: ScorerSettings, engine: AsyncEngine, env: dict[str, str], instances: int
) -> tuple[float, list[int]]:
    """events/s of ``instances`` scorer processes in one group, from the first poll of their metrics that shows
    events folded (process start and group join left out) until the offsets stored with their checkpoints reach
    the topic's end (what is timed is durable); and how many accounts each held in memory at the end."""
    ends = await end_offsets(settings, settings.topics.events)  # the topic is complete: read once
    group = f"{settings.topic_prefix}.scorer"
    scorers = [
        ServiceProcess("scorer", {**env, "CHURNWATCH_LOG_LEVEL": "WARNING"}, free_port()).start()
        for _ in range(instances)
    ]
    launched = time.perf_counter()
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            for scorer in scorers:
                scorer.check_running()
            if first is None and (folded := await _folded(scorers)) > 0:
                first = (time.perf_counter(), folded)  # then no more /metrics polls: they cost the scorer
            stored = await stored_offsets(engine, group, settings.topics.events)
            if first is not None and _reached(stored, ends):
                rate = _steady_rate(sum(ends.values()), launched, first)
                return rate, [await _resident_of(s) for s in scorers]
            await asyncio.sleep(0.01)  # polling the metrics, then the stored offsets, with a deadline
        raise TimeoutError(f"{instances} scorer(s) did not reach the end of the topic in 900 s")
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
    settings: ScorerSettings, records: Records, config: ScoringConfig, *, rows_per_batch: bool = False
) -> tuple[float, int, ResidentAccounts]:
    """The scorer's own work with no I/O: decode, dedup, fold and score per polled batch of max_batch, in the
    scorer's ``ResidentAccounts``; ``rows_per_batch``: also encode each touched account's row per batch (what
    the per-batch scorer wrote). Returns events/s, the number of day closes and the resident accounts."""
    resident = ResidentAccounts(config, max_resident=10**9)
    started = time.perf_counter()
    for at in range(0, len(records), settings.max_batch):
        events: list[tuple[ScorerEvent, int]] = []
        for key, value in records[at : at + settings.max_batch]:
            events.append((decode_scorer_event(value), hash(key) % settings.events_partitions))
        missing = resident.missing(e.account_id for e, _ in events)
        resident.admit(Loaded(), missing, {})
        resident.fold(events)
        if rows_per_batch:
            resident.take_rows({}, {})
            resident.checkpointed()
        else:
            resident.pending = Pending()
    return len(records) / (time.perf_counter() - started), resident.closes, resident


PASSES = 2  # the in-memory figures are the best of this many folds: a ceiling is the most this machine gave


def _best(
    settings: ScorerSettings, records: Records, config: ScoringConfig, *, rows_per_batch: bool = False
) -> tuple[float, int]:
    """The best events/s of ``PASSES`` in-memory folds (one fold is one sample of a noisy machine), and the day
    closes of one."""
    folds = [_in_memory(settings, records, config, rows_per_batch=rows_per_batch)[:2] for _ in range(PASSES)]
    return max(rate for rate, _ in folds), folds[0][1]


def _resident_bytes(settings: ScorerSettings, records: Records, config: ScoringConfig) -> float:
    """Bytes per resident account (records, event keys), by tracemalloc over a fold of the whole stream."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _, _, resident = _in_memory(settings, records, config)
    resident.forget_old_keys()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / max(1, len(resident.accounts))


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


def _reached(stored: dict[int, int], ends: dict[int, int]) -> bool:
    return all(stored.get(p, 0) >= off for p, off in ends.items())


async def _fill(engine: AsyncEngine, accounts: int) -> None:
    """Bulk-copy a real account's row to ``accounts`` rows, already evaluated at the clock."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO account_health (account_id, state, score, band, components, active_signals,"
                " explanation, as_of, history, partition, scorecard, closed_on, closed_score, closed_band)"
                " SELECT 'bulk-' || g, h.state, h.score, h.band, h.components, h.active_signals, h.explanation,"
                " h.as_of, h.history, NULL, h.scorecard, h.closed_on, h.closed_score, h.closed_band"
                " FROM generate_series(1, :n) g, (SELECT * FROM account_health LIMIT 1) h"
                " ON CONFLICT DO NOTHING"
            ),
            {"n": accounts},
        )


def _peak_rss_mb(scorer: ServiceProcess) -> float:
    assert scorer.proc is not None
    with open(f"/proc/{scorer.proc.pid}/status") as f:
        found = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
    return int(found.group(1)) / 1024 if found else -1.0


async def _restart(
    settings: ScorerSettings, engine: AsyncEngine, env: dict[str, str], accounts: int
) -> tuple[float, float, float, int]:
    """Seconds to /readyz and to a processed event after a restart over ``accounts`` rows; then one event for
    each of those accounts: the peak RSS (MB) once all are resident, and how many are."""
    big = {**env, "CHURNWATCH_LOG_LEVEL": "WARNING", "CHURNWATCH_MAX_RESIDENT_ACCOUNTS": str(accounts + 10_000)}
    scorer = ServiceProcess("scorer", big, free_port())
    seen_before = await seen_event_count(engine)
    started = time.perf_counter()
    scorer.start()
    try:
        scorer.wait_ready(60)
        ready = time.perf_counter() - started
        await _produce(settings, [_probe("acct-000000", "restart-probe")])
        live = await _until_seen(engine, seen_before + 1, started, "the probe event")
        await _produce(settings, [_probe(f"bulk-{n}", f"touch-{n}") for n in range(1, accounts + 1)])
        with contextlib.suppress(TimeoutError):  # report the peak so far, with how many were resident by then
            await _until_seen(engine, seen_before + 1 + accounts, started, "an event for every account")
        return ready, live, _peak_rss_mb(scorer), await _resident_of(scorer)
    finally:
        scorer.stop()


def _probe(account: str, event_id: str) -> tuple[bytes, bytes]:
    event = {"kind": "usage", "action": "login", "event_id": event_id, "account_id": account}
    return account.encode(), json.dumps(event | {"occurred_at": END.isoformat()}).encode()


async def _until_seen(engine: AsyncEngine, count: int, started: float, what: str) -> float:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if await seen_event_count(engine) >= count:
            return time.perf_counter() - started
        await asyncio.sleep(0.02)  # polling, with a deadline
    raise TimeoutError(f"the restarted scorer did not process {what} within 300 s")


async def _stream(records: Records, accounts: int, instances: int, *, first: bool) -> dict[str, float]:
    """Every figure of one stream, in its own sandbox; prints them as it goes."""
    async with private_sandbox("bench") as (name, _):
        settings = ScorerSettings(topic_prefix=name.topic_prefix, database_schema=name.schema)
        engine = build_engine(settings)
        try:
            await _produce(settings, records)
            raw = max([await _raw(settings, len(records)) for _ in range(3)])
            pydantic = await _raw(settings, len(records), decode=decode_event)
            fast = await _raw(settings, len(records), decode=decode_scorer_event)
            scored, _ = await _scorers(settings, engine, name.env, 1)
            print(f"events: {len(records)} for {accounts} accounts, {settings.events_partitions} partitions")
            print(f"raw aiokafka consumer:   {raw:10.0f} events/s  (best of 3)")
            print(f"raw + pydantic decode:   {pydantic:10.0f} events/s  (the published schema)")
            print(f"raw + scorer decode:     {fast:10.0f} events/s  (msgspec, the schema where it defers)")
            print(f"scorer end to end:       {scored:10.0f} events/s  (one scorer process)")
            print(f"ratio scorer/raw:        {scored / raw:10.2f}")
            figures = {"scored": scored, **_ceilings(settings, records, scored, raw, full=first)}
            if first and instances > 1:
                await _scale_out(records, instances, scored, accounts)
            avg_json, max_json, avg_pg, max_pg = await _state_size(engine)
            print(f"state per account (JSON text, state+history): avg {avg_json:.0f} B, max {max_json} B")
            print(f"state per account (pg_column_size):           avg {avg_pg:.0f} B, max {max_pg} B  (target <= 2048)")
            return figures
        finally:
            await engine.dispose()


def _ceilings(settings: ScorerSettings, records: Records, scored: float, raw: float, *, full: bool) -> dict[str, float]:
    """The in-memory ceiling; ``full``: also as before, without the model, and the memory per account (each is
    one more fold of the stream: the first stream only, to keep the run short)."""
    with_model = scoring_config(settings, load_model(default_model_path()))
    ceiling, closes = _best(settings, records, with_model)
    print(
        f"in-memory ceiling:       {ceiling:10.0f} events/s  (decode + dedup + windows + score, no I/O;"
        f" best of {PASSES})"
    )
    print(f"ratio ceiling/raw:       {ceiling / raw:10.2f}  (the most any persistence design could reach)")
    print(f"ratio scorer/ceiling:    {scored / ceiling:10.2f}  (target >= 0.7)  ({closes} day closes)")
    if not full:
        return {"ceiling": ceiling}
    as_before, _ = _best(settings, records, with_model, rows_per_batch=True)
    no_model, _ = _best(settings, records, scoring_config(settings))
    model_us = (len(records) / ceiling - len(records) / no_model) / max(1, closes) * 1e6
    print(f"ceiling as before:       {as_before:10.0f} events/s  (+ each touched row encoded per batch)")
    print(f"ceiling without model:   {no_model:10.0f} events/s")
    print(f"churn-risk estimate:     {model_us:10.1f} us per day close")
    print(f"in memory per account:   {_resident_bytes(settings, records, with_model):10.0f} B  (tracemalloc)")
    return {"ceiling": ceiling, "as_before": as_before}


async def _scale_out(records: Records, instances: int, one: float, accounts: int) -> None:
    async with private_sandbox("bench") as (name, _):
        settings = ScorerSettings(topic_prefix=name.topic_prefix, database_schema=name.schema)
        engine = build_engine(settings)
        try:
            await _produce(settings, records)
            many, resident = await _scorers(settings, engine, name.env, instances)
        finally:
            await engine.dispose()
    print(f"{instances} scorer processes:     {many:10.0f} events/s  (one group, a fresh copy of the topic)")
    print(f"scale-out factor:        {many / one:10.2f}  ({os.cpu_count()} cores, with Kafka and PostgreSQL)")
    print(f"resident per process:    {' + '.join(map(str, resident))} of {accounts} accounts")


async def _restart_figures(events: int, restart_accounts: int) -> None:
    async with private_sandbox("bench") as (name, _):
        settings = ScorerSettings(topic_prefix=name.topic_prefix, database_schema=name.schema)
        engine = build_engine(settings)
        try:
            await _produce(settings, _events(min(events, 100_000), 1000))
            await _scorers(settings, engine, name.env, 1)
            await _fill(engine, restart_accounts)
            ready, live, rss, resident = await _restart(settings, engine, name.env, restart_accounts)
            print(
                f"restart with {restart_accounts} accounts: /readyz 200 after {ready:.2f} s,"
                f" new event processed after {live:.2f} s  (target < 10 s)"
            )
            print(f"peak RSS with {resident} accounts resident: {rss:.0f} MB  (of {restart_accounts} sent an event)")
        finally:
            await engine.dispose()


def events_for(events: int, count: int, accounts: list[int], *, same_shape: bool) -> int:
    """The events of the ``count``-account stream: ``events`` each by default (a bigger book has fewer events per
    account, so more day closes per event); with ``same_shape`` as many per account as the first stream's."""
    return events * count // accounts[0] if same_shape else events


async def run(events: int, accounts: list[int], restart_accounts: int, instances: int, *, same_shape: bool) -> None:
    tune_gc_for_batches()  # as in the scorer process: raw, ceiling and scorer all run with the same GC
    figures = {}
    for n, count in enumerate(accounts):
        records = _events(events_for(events, count, accounts, same_shape=same_shape), count)
        figures[count] = await _stream(records, count, instances, first=n == 0)
    if len(accounts) > 1:
        small, big = figures[accounts[0]], figures[accounts[-1]]
        print(
            f"{accounts[-1]} vs {accounts[0]} accounts:  scorer {big['scored'] / small['scored']:.2f}x"
            f" (target >= 0.5), ceiling {big['ceiling'] / small['ceiling']:.2f}x"
        )
    if restart_accounts > 0:
        await _restart_figures(events, restart_accounts)


def run_ceilings(events: int, accounts: list[int], *, same_shape: bool) -> None:
    """``--ceiling-only``: the in-memory ceiling of each stream and what a day close costs, with no Kafka or
    PostgreSQL (a quick measure of the scorer's own work: decode, dedup, fold, day closes, tips)."""
    tune_gc_for_batches()
    settings = ScorerSettings()
    with_model = scoring_config(settings, load_model(default_model_path()))
    ceilings = []
    for count in accounts:
        records = _events(events_for(events, count, accounts, same_shape=same_shape), count)
        ceiling, closes = _best(settings, records, with_model)
        no_model, _ = _best(settings, records, scoring_config(settings))
        per_close = len(records) / ceiling / max(1, closes) * 1e6
        model_us = (len(records) / ceiling - len(records) / no_model) / max(1, closes) * 1e6
        print(f"{count} accounts, {len(records)} events, {closes} day closes:")
        print(f"  in-memory ceiling:     {ceiling:10.0f} events/s  ({per_close:.1f} us of all the work per day close)")
        print(f"  without the model:     {no_model:10.0f} events/s  (the churn-risk estimate: {model_us:.1f} us/close)")
        ceilings.append(ceiling)
    if len(ceilings) > 1:
        print(f"{accounts[-1]} vs {accounts[0]} accounts: ceiling {ceilings[-1] / ceilings[0]:.2f}x")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer", description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--accounts", default="1000,10000", help="account counts, one stream each")
    parser.add_argument("--instances", type=int, default=2, help="scorer processes for the scale-out figure")
    parser.add_argument("--restart-accounts", type=int, default=100_000)
    parser.add_argument("--ceiling-only", action="store_true", help="only the in-memory ceilings: no Kafka or PG")
    parser.add_argument(
        "--same-shape",
        action="store_true",
        help="each stream as many events per account as the first (--events for the first): the number of accounts"
        " alone varies, not the day closes per event",
    )
    args = parser.parse_args(argv)
    accounts = [int(a) for a in str(args.accounts).split(",")]
    if args.ceiling_only:
        run_ceilings(args.events, accounts, same_shape=args.same_shape)
    else:
        asyncio.run(run(args.events, accounts, args.restart_accounts, args.instances, same_shape=args.same_shape))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
