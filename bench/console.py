"""The console's at-risk list at 10,000 accounts: server time of its pages, against real processes.

    python -m bench.console [--accounts 10000] [--requests 50]

1. A fresh sandbox; the scorer's read tables seeded with --accounts scored accounts (health, profiles, 30 days
   of history; tests/support/console.py), as a scorer would have left them, and one console user.
2. Real scorer, alerter and console processes (`churnwatch scorer|alerter|console`) on the sandbox.
3. --requests GETs of each page, signed in, one at a time after two warm-up requests: p50 / p95 / max in ms,
   measured at the client on loopback (so an upper bound of the server time). The first page of the list,
   sorted by band, is the figure with a target: p95 < 300 ms. The scorer's own GET /v1/accounts is timed too,
   to show what the console adds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

import httpx

from services.demo.processes import free_port, running
from services.demo.sandbox import private_sandbox
from shared.db import build_engine
from tests.support.console import (
    CSMS,
    PASSWORD,
    READER,
    add_user,
    console_env,
    seed_accounts,
    signed_in_client,
    with_service_token,
)

TOKEN = "bench-token-0123456789abcdef"
TARGET_MS = 300.0
PAGES = (
    ("list, first page (sort band)", "/"),
    ("list, sort by ARR", "/?sort=arr"),
    ("list, sort by 7-day change", "/?sort=change"),
    ("list, my accounts", "/?mine=1"),
    ("list, red + usage_drop", "/?band=red&signal_type=usage_drop"),
    ("list, search", "/?q=Company+99"),
    ("list, page 100", "/?page=100"),
    ("portfolio", "/portfolio"),
)


def _figures(label: str, samples_ms: Sequence[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{label + ':':42} p50 {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms  max {ordered[-1]:7.1f} ms"


async def _time(client: httpx.AsyncClient, path: str, requests: int) -> list[float]:
    for _ in range(2):
        (await client.get(path)).raise_for_status()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        resp = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
    return samples


async def _measure(console: str, scorer: str, alerter: str, requests: int) -> None:
    async with httpx.AsyncClient(base_url=scorer, headers=READER) as client:
        print(_figures("scorer GET /v1/accounts?limit=50", await _time(client, "/v1/accounts?limit=50", requests)))
    ids = "&".join(f"account_id=acct-{i:05d}" for i in range(1, 51))
    async with httpx.AsyncClient(base_url=alerter, headers=READER) as client:
        print(_figures("alerter GET /v1/alerts (50 accounts)", await _time(client, f"/v1/alerts?{ids}", requests)))
    async with httpx.AsyncClient(base_url=console, follow_redirects=False) as client:
        await signed_in_client(client, CSMS[0])
        for label, path in PAGES:
            samples = await _time(client, path, requests)
            print(_figures(label, samples), flush=True)
            if path == "/":
                p95 = sorted(samples)[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
                verdict = "meets" if p95 < TARGET_MS else "MISSES"
                print(f"first page p95 {p95:.1f} ms {verdict} the {TARGET_MS:.0f} ms target")


async def _seed(settings: object, accounts: int) -> None:
    engine = build_engine(settings)  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        await seed_accounts(engine, accounts)
        print(f"seeded {accounts} accounts in {time.perf_counter() - started:.1f} s")
    finally:
        await engine.dispose()


async def _run(accounts: int, requests: int) -> None:
    async with private_sandbox("bench") as (name, settings):
        await _seed(settings, accounts)
        await add_user(settings, CSMS[0], "Ana", PASSWORD)
        ports = {"scorer": free_port(), "alerter": free_port()}
        env = with_service_token({**name.env, "CHURNWATCH_LOG_LEVEL": "WARNING", "CHURNWATCH_ALERTER_API_TOKEN": TOKEN})
        with running(ports, env) as procs:
            scorer, alerter = procs["scorer"].url, procs["alerter"].url
            console_port = free_port()
            with running(
                {"console": console_port}, console_env(env, scorer_url=scorer, alerter_url=alerter, alerter_token=TOKEN)
            ) as console:
                await _measure(console["console"].url, scorer, alerter, requests)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    asyncio.run(_run(args.accounts, args.requests))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
