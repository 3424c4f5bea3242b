"""Alerter delivery latency: a signal produced to Kafka -> the Slack-contract server received the message.

    python -m bench.alerter [--signals 100] [--rate 20]

Runs against the local stack (deploy/local-stack.sh up) in a private topic prefix and schema, with the
alerter as a real process and the test suite's Slack-contract HTTP server. Prints p50/p95/max of the paced
run (signals spaced at --rate per second: latency without queueing) and of a burst (all at once: the time
until the last one arrives, i.e. throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from services.demo.processes import ServiceProcess
from shared.db import build_engine
from shared.kafka import create_topics
from shared.migrate import upgrade_async
from shared.settings import CommonSettings
from shared.signals import RiskSignal
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import free_port


def _signal(account_id: str) -> RiskSignal:
    return RiskSignal.model_validate(
        {
            "signal_id": f"usage_drop:{account_id}",
            "account_id": account_id,
            "signal_type": "usage_drop",
            "severity": "warning",
            "audience": "csm",
            "explanation": "logins -60% vs the 28 days before",
            "score_before": 78,
            "score_after": 52,
            "occurred_at": datetime.now(UTC).isoformat(),
            "account": {"account_id": account_id, "name": account_id, "csm": {"slack": "U0ANA"}},
        }
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(
    producer: AIOKafkaProducer, topic: str, slack: SlackWebhookServer, tag: str, n: int, rate: float
) -> list[float]:
    sent: dict[str, float] = {}
    for i in range(n):
        account = f"{tag}-{i}"
        sent[account] = time.time()
        await producer.send_and_wait(topic, _signal(account).model_dump_json().encode(), key=account.encode())
        if rate:
            await asyncio.sleep(1 / rate)  # pacing, not synchronisation
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        arrived = {m: r.at for r in slack.requests() for m in re.findall(rf"\(({tag}-\d+)\)", r.payload["text"])}
        if len(arrived) >= n:
            return [arrived[a] - sent[a] for a in sent]
        await asyncio.sleep(0.1)
    raise SystemExit(f"only {len(arrived)} of {n} messages arrived within 120 s")


def _report(name: str, latencies: list[float]) -> None:
    ms = [x * 1000 for x in latencies]
    print(
        f"{name}: n={len(ms)} p50={_percentile(ms, 0.5):.1f} ms p95={_percentile(ms, 0.95):.1f} ms "
        f"max={max(ms):.1f} ms mean={statistics.fmean(ms):.1f} ms",
        flush=True,
    )


async def _bench(n: int, rate: float) -> None:
    tag = uuid.uuid4().hex[:8]
    env = {"CHURNWATCH_TOPIC_PREFIX": f"bench-{tag}", "CHURNWATCH_DATABASE_SCHEMA": f"bench_{tag}"}
    settings = CommonSettings(
        topic_prefix=env["CHURNWATCH_TOPIC_PREFIX"], database_schema=env["CHURNWATCH_DATABASE_SCHEMA"]
    )
    await upgrade_async(settings)
    await create_topics(settings)
    slack = SlackWebhookServer().start()
    env |= {
        "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url,
        "CHURNWATCH_EMAIL_ENABLED": "false",
        "CHURNWATCH_LOG_LEVEL": "WARNING",
    }
    alerter = ServiceProcess("alerter", env, free_port()).start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=0)
    engine = build_engine(settings)
    try:
        await asyncio.to_thread(alerter.wait_ready, 60)
        await producer.start()
        await _run(producer, settings.topics.signals, slack, f"warm{tag}", 5, rate)  # connections, JIT of paths
        _report(f"paced at {rate:g}/s", await _run(producer, settings.topics.signals, slack, f"paced{tag}", n, rate))
        burst = await _run(producer, settings.topics.signals, slack, f"burst{tag}", n, 0)
        _report("burst", burst)
        print(f"burst throughput: {n / max(burst):.1f} messages/s (last of {n} after {max(burst):.2f} s)")
    finally:
        await producer.stop()
        alerter.stop()
        slack.stop()
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        await engine.dispose()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerter")
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="signals per second in the paced run")
    args = parser.parse_args(argv)
    asyncio.run(_bench(args.signals, args.rate))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
