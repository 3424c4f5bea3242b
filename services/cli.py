"""The ``churnwatch`` command: one subcommand per process, plus the local stack, migrations and the demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from shared.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


def _serve(build: Callable[[], tuple[FastAPI, CommonSettings]]) -> None:
    from shared.service_app import configure_logging

    try:
        app, settings = build()
    except ValueError as exc:  # settings, scorecard, routing, model files: their messages name the problem
        print(f"churnwatch: cannot start: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # longer than any Retry-After a service sends, so a client that honours it finds its connection open
        timeout_keep_alive=getattr(settings, "http_keep_alive_seconds", 5),
    )


def _ingest() -> tuple[FastAPI, CommonSettings]:
    from services.ingest.app import create_app
    from services.ingest.settings import IngestSettings

    s = IngestSettings()
    return create_app(s), s


def _scorer() -> tuple[FastAPI, CommonSettings]:
    from services.scorer.app import create_app
    from services.scorer.settings import ScorerSettings

    s = ScorerSettings()
    return create_app(s), s


def _alerter() -> tuple[FastAPI, CommonSettings]:
    from services.alerter.app import create_app
    from services.alerter.settings import AlerterSettings

    s = AlerterSettings()
    return create_app(s), s


def _console() -> tuple[FastAPI, CommonSettings]:
    from services.console.app import create_app
    from services.console.settings import ConsoleSettings

    s = ConsoleSettings()
    return create_app(s), s


def _stack(action: str) -> int:
    return subprocess.call(["bash", str(REPO_ROOT / "deploy" / "local-stack.sh"), action])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="churnwatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ingest", help="run the HTTP ingest service")
    sub.add_parser("scorer", help="run the scorer (Kafka consumer + probes)")
    sub.add_parser("alerter", help="run the alerter (Kafka consumer, delivery worker + probes)")
    sub.add_parser("console", help="run the CSM console (web pages over the scorer's and alerter's APIs)")
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    topics = sub.add_parser("topics", help="Kafka topics")
    topics.add_argument("action", choices=["create"])
    stack = sub.add_parser("stack", help="the local Kafka + PostgreSQL")
    stack.add_argument("action", choices=["up", "down", "status"])
    from datetime import date

    sim = sub.add_parser("simulate", help="stream simulated accounts to an ingest URL, or write history with --out")
    sim.add_argument("--url", default="http://127.0.0.1:8000")
    sim.add_argument("--out", type=Path, help="write months of history with outcomes to this directory instead")
    sim.add_argument("--accounts", type=int, help="default 200 (streamed) or 1000 (--out)")
    sim_span = sim.add_mutually_exclusive_group()
    sim_span.add_argument("--days", type=int, help="default 35 (streamed) or 6 months (--out)")
    sim_span.add_argument("--months", type=int, help="calendar months from --start (--out only)")
    sim.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 5), help="first day (--out only)")
    sim.add_argument("--day-seconds", type=float, default=0.0, help="pause between simulated days")
    sim.add_argument("--seed", type=int, help="default 7 (streamed) or 11 (--out)")
    demo = sub.add_parser("demo", help="the whole pipeline on the local stack, with simulated accounts")
    demo.add_argument("--accounts", type=int, help="default 200, or 1000 with --backtest")
    demo.add_argument("--days", type=int, default=35)
    demo.add_argument("--day-seconds", type=float, default=1.0)
    demo.add_argument("--linger", type=float, default=30.0, help="seconds to keep running after the simulation")
    demo.add_argument(
        "--backtest", action="store_true", help="instead: simulate months of history, backfill, score, backtest"
    )
    demo.add_argument("--months", type=int, default=6, help="with --backtest: months of history")
    demo.add_argument("--seed", type=int, default=20261201, help="with --backtest: the simulated base's seed")
    demo.add_argument("--out", type=Path, help="with --backtest: where the files and reports go")
    from services.ingest import keys_cli

    keys_cli.add_parser(sub)
    from services.backfill import cli as backfill_cli

    backfill_cli.add_parser(sub)
    from services.backtest import cli as backtest_cli

    backtest_cli.add_parser(sub)
    from services.calibrate import cli as calibrate_cli

    calibrate_cli.add_parser(sub)
    from services.console import cli as console_cli

    console_cli.add_parser(sub)
    from services.scorer import data_problems_cli

    data_problems_cli.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "alembic.runtime.plugins", "aiokafka"):  # their INFO lines bury the alerts
        logging.getLogger(noisy).setLevel(logging.WARNING)

    if args.command in ("ingest", "scorer", "alerter", "console"):
        _serve({"ingest": _ingest, "scorer": _scorer, "alerter": _alerter, "console": _console}[args.command])
        return 0
    if args.command == "db":
        from shared.migrate import upgrade

        upgrade(CommonSettings())
        return 0
    if args.command == "topics":
        from shared.kafka import create_topics

        created = asyncio.run(create_topics(CommonSettings()))
        print(f"created topics: {', '.join(created) or 'none (all exist)'}")
        return 0
    if args.command == "apikeys":
        return keys_cli.run(args)
    if args.command == "backfill":
        return backfill_cli.run(args)
    if args.command == "backtest":
        return backtest_cli.run(args)
    if args.command == "calibrate":
        return calibrate_cli.run(args)
    if args.command == "console-user":
        return console_cli.run(args)
    if args.command == "data-problem":
        return data_problems_cli.run(args)
    if args.command == "stack":
        return _stack(args.action)
    if args.command == "simulate":
        if args.out is not None:
            from services.demo.history import simulate_history

            return simulate_history(
                args.out, accounts=args.accounts, months=args.months, days=args.days, start=args.start, seed=args.seed
            )
        if args.months is not None:
            parser.error("--months needs --out")
        from services.demo.sender import simulate

        n = asyncio.run(
            simulate(
                args.url,
                accounts=200 if args.accounts is None else args.accounts,
                days=35 if args.days is None else args.days,
                day_seconds=args.day_seconds,
                seed=7 if args.seed is None else args.seed,
            )
        )
        print(f"sent {n} events")
        return 0
    if args.command == "demo" and args.backtest:
        from services.demo.backtest_run import run_backtest_demo

        return run_backtest_demo(
            accounts=args.accounts or 1000, months=args.months, seed=args.seed, start=date(2026, 1, 5), out_dir=args.out
        )
    if args.command == "demo":
        from services.demo.orchestrate import run_demo

        return run_demo(accounts=args.accounts or 200, days=args.days, day_seconds=args.day_seconds, linger=args.linger)
    return 2


if __name__ == "__main__":
    sys.exit(main())
