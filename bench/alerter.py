"""Alerter delivery latency and burst behaviour against a Slack webhook that enforces Slack's rate limit.

    python -m bench.alerter [--paced 15] [--rate 0.8] [--burst 20] [--slack-interval 1.0] [--group-wait 0]

Runs against the local stack (deploy/local-stack.sh up) in a private topic prefix and schema, with the
alerter as a real process and the test suite's Slack-contract HTTP server, which answers 429 + Retry-After 1
to a second message on one webhook within 0.9 s (Slack allows about one per second). Prints p50/p95/max of
signal produced -> message received for a paced run (below the webhook's limit: latency without queueing)
and for a burst to one webhook (all at once), first with the alerter's per-webhook pacing
(--slack-interval, the default 1 s), then with pacing off, with the number of 429s each met.

Every signal is for its own account, so grouping (services/alerter/grouping.py) has nothing to join; its
group_wait is a wait by design, so the runs above use --group-wait (0: the delivery path itself, comparable
with figures from before grouping) and a last paced run shows the alerter's default group wait.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time

from aiokafka import AIOKafkaProducer

from services.demo.processes import ServiceProcess
from services.demo.sandbox import private_sandbox
from tests.support.alerter import risk_signal
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import free_port


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
        await producer.send_and_wait(
            topic,
            risk_signal(account, signal_id=f"usage_drop:{account}").model_dump_json().encode(),
            key=account.encode(),
        )
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


Phase = tuple[str, str, int, float]  # name, account tag, signals, rate (0: all at once)


async def _phase(
    env: dict[str, str], slack: SlackWebhookServer, producer: AIOKafkaProducer, topic: str, phases: list[Phase]
) -> None:
    alerter = ServiceProcess("alerter", env, free_port()).start()
    try:
        await asyncio.to_thread(alerter.wait_ready, 60)
        for name, tag, n, rate in phases:
            limited = slack.rate_limited
            latencies = await _run(producer, topic, slack, tag, n, rate)
            _report(name, latencies)
            met = slack.rate_limited - limited
            if rate:
                print(f"  429s met: {met}")
            else:  # all produced at once: the last arrival is the time the burst took
                print(
                    f"  last of {n} after {max(latencies):.2f} s ({n / max(latencies):.2f} messages/s), 429s met: {met}"
                )
    finally:
        alerter.stop()


async def _bench(paced: int, rate: float, burst: int, slack_interval: float, group_wait: float) -> None:
    async with private_sandbox("bench") as (name, settings):
        tag = name.topic_prefix.rsplit("-", 1)[1]
        slack = SlackWebhookServer().start()
        slack.rate_limit_seconds = 0.9
        env = name.env | {
            "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url,
            "CHURNWATCH_EMAIL_ENABLED": "false",
            "CHURNWATCH_LOG_LEVEL": "ERROR",
        }
        default_wait_env = env | {"CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS": str(slack_interval)}
        env = env | {"CHURNWATCH_GROUP_WAIT_SECONDS": str(group_wait)}
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=0)
        topic = settings.topics.signals
        try:
            await producer.start()
            paced_env = env | {"CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS": str(slack_interval)}
            phases = [
                ("warm-up", f"warm{tag}", 2, rate),
                (f"paced at {rate:g}/s, pacing {slack_interval:g} s", f"paced{tag}", paced, rate),
                (f"burst, pacing {slack_interval:g} s", f"burst{tag}", burst, 0.0),
            ]
            await _phase(paced_env, slack, producer, topic, phases)
            unpaced_env = env | {"CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS": "0"}
            await _phase(unpaced_env, slack, producer, topic, [("burst, pacing off", f"raw{tag}", burst, 0.0)])
            default_wait = [(f"paced at {rate:g}/s, default group wait", f"grouped{tag}", paced, rate)]
            await _phase(default_wait_env, slack, producer, topic, default_wait)
        finally:
            await producer.stop()
            slack.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerter")
    parser.add_argument("--paced", type=int, default=15, help="signals in the paced run")
    parser.add_argument("--rate", type=float, default=0.8, help="signals per second in the paced run")
    parser.add_argument("--burst", type=int, default=20, help="signals produced at once to one webhook")
    parser.add_argument("--slack-interval", type=float, default=1.0, help="the alerter's pacing per webhook")
    parser.add_argument("--group-wait", type=float, default=0.0, help="the alerter's group wait in the runs")
    args = parser.parse_args(argv)
    asyncio.run(_bench(args.paced, args.rate, args.burst, args.slack_interval, args.group_wait))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
