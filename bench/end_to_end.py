"""Event -> Slack latency through the whole pipeline, inside a steady background load:

    python -m bench.end_to_end [--rate 5000] [--samples 200] [--sample-rate 5] [--batch 500] [--warmup 5]

Runs ingest, scorer and alerter as real processes against the shared local stack, in a private topic prefix and
schema (nothing is killed), with the test suite's Slack-contract server as the receiver. A background load of
``--rate`` events/s (logins of 1,000 accounts, batches of ``--batch``, Retry-After honoured; tests/support/load.py)
runs throughout. Each sample is one account's request of three urgent escalated tickets dated yesterday and one
login now: the login closes yesterday, whose escalations raise a critical ``escalation`` signal, routed to Slack.
Latency = the request sent -> the Slack server received the message naming the account. Prints p50/p95/p99/max
over the samples beside the background rate actually achieved (issue 13's target: p99 < 2 s at 5,000 events/s).
``--group-wait`` sets the alerter's grouping delay (a new group of an account's notices waits that long for
the rest; its default adds that much to every first notice). The alerter's per-webhook pacing is off
(CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS=0: the contract server does not rate-limit here), so the figure is the
pipeline's, not Slack's 1 message/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.demo.processes import ServiceProcess, free_port
from services.demo.sandbox import private_sandbox
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.support.load import SteadyLoad, login, steady_logins
from tests.support.slack_server import SlackWebhookServer

_ACCOUNT = re.compile(r"\b(e2e-\d+)\b")


def sample_events(account: str, now: datetime) -> list[dict[str, Any]]:
    yesterday = (now - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    tickets = [
        {
            "kind": "ticket",
            "action": "escalated",
            "priority": "urgent",
            "ticket_id": f"{account}-T{k}",
            "event_id": f"{account}-t{k}",
            "account_id": account,
            "occurred_at": yesterday.isoformat(),
        }
        for k in range(3)
    ]
    return [*tickets, login(account, 0, now, f"{account}-now")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _samples(url: str, key: str, n: int, per_second: float) -> dict[str, float]:
    """Sends one sample every 1/per_second s, each on its own task, so a slow answer does not delay the next."""
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:

        async def one(account: str) -> None:
            for _ in range(20):
                sent[account] = time.time()
                resp = await client.post("/v1/events", json={"events": sample_events(account, datetime.now(UTC))})
                if resp.is_success:
                    return
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))  # what ingest asked for

        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(one(f"e2e-{i}")))
            await asyncio.sleep(1 / per_second)  # the samples' pace, not a synchronisation
        await asyncio.gather(*tasks)
    return sent


def _arrivals(slack: SlackWebhookServer) -> dict[str, float]:
    first: dict[str, float] = {}
    for r in slack.requests():
        for account in _ACCOUNT.findall(r.payload.get("text", "")):
            first.setdefault(account, r.at)
    return first


async def _await_arrivals(slack: SlackWebhookServer, n: int, within: float) -> dict[str, float]:
    deadline = time.monotonic() + within
    while len(arrived := _arrivals(slack)) < n and time.monotonic() < deadline:  # noqa: ASYNC110 (another thread)
        await asyncio.sleep(0.2)
    return arrived


async def run(args: argparse.Namespace) -> None:
    slack = SlackWebhookServer().start()
    async with private_sandbox("bench", events_partitions=6) as (name, settings):
        env = {
            **name.env,
            "CHURNWATCH_EVENTS_PARTITIONS": "6",
            "CHURNWATCH_LOG_LEVEL": "WARNING",
            "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url_for("default"),
            "CHURNWATCH_SLACK_WEBHOOKS": json.dumps({"csm": slack.url_for("csm"), "support": slack.url_for("support")}),
            "CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS": "0",
            "CHURNWATCH_EMAIL_ENABLED": "false",
        }
        if args.group_wait is not None:  # the alerter holds a new group of an account's notices this long
            env["CHURNWATCH_GROUP_WAIT_SECONDS"] = str(args.group_wait)
        procs = [
            ServiceProcess(s, env, free_port(), stdout=subprocess.DEVNULL) for s in ("ingest", "scorer", "alerter")
        ]
        try:
            for p in procs:
                p.start()
            for p in procs:
                await asyncio.to_thread(p.wait_ready, 90)
            key = await issue_key(settings, name="bench", scopes=frozenset(Scope))
            await _measure(args, procs[0].url, key, slack)
        finally:
            for p in procs:
                p.stop()
    slack.stop()


async def _measure(args: argparse.Namespace, url: str, key: str, slack: SlackWebhookServer) -> None:
    load = SteadyLoad(url, key, steady_logins("bg", 1000), rate=args.rate, batch=args.batch, max_in_flight=16)
    stop = asyncio.Event()
    background = asyncio.create_task(load.run(stop))
    await asyncio.sleep(args.warmup)  # let the background load reach its steady state
    acked_before, began = len(load.figures.acknowledged), time.monotonic()
    sent = await _samples(url, key, args.samples, args.sample_rate)
    achieved = (len(load.figures.acknowledged) - acked_before) / (time.monotonic() - began)
    arrived = await _await_arrivals(slack, len(sent), within=60.0)
    stop.set()
    await background
    latencies = [arrived[a] - t for a, t in sent.items() if a in arrived]
    print(
        f"background load: offered {args.rate:.0f} events/s, achieved {achieved:.0f} events/s "
        f"(answers {dict(sorted(load.figures.answers.items()))}, client ticks skipped {load.figures.skipped_ticks}); "
        f"alerter group wait: {'default' if args.group_wait is None else f'{args.group_wait} s'}"
    )
    if not latencies:
        raise SystemExit(f"no Slack message arrived for any of {len(sent)} samples")
    ms = [x * 1000 for x in latencies]
    print(
        f"event -> slack: n={len(ms)} of {len(sent)} p50={percentile(ms, 0.5):.0f} ms "
        f"p95={percentile(ms, 0.95):.0f} ms p99={percentile(ms, 0.99):.0f} ms max={max(ms):.0f} ms "
        "(target p99 < 2000 ms)",
        flush=True,
    )
    if len(latencies) < len(sent):
        raise SystemExit(f"only {len(latencies)} of {len(sent)} samples reached Slack within 60 s")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.end_to_end", description=__doc__)
    parser.add_argument("--rate", type=float, default=5000.0, help="background events/s offered")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--sample-rate", type=float, default=5.0, help="samples sent per second")
    parser.add_argument("--batch", type=int, default=500, help="events per background request")
    parser.add_argument(
        "--group-wait", type=float, help="the alerter's CHURNWATCH_GROUP_WAIT_SECONDS (default: its own default)"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of background load before sampling")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
