"""``churnwatch data-problem list|release``: the data problems open now, and releasing one's held alerts.

Releasing says "this is not a data problem, the accounts really went quiet" (a product retired, say): the
inactivity and usage-drop alerts it held back are raised at the accounts' next day close, if their conditions
still hold. Needs the database (CHURNWATCH_DATABASE_URL, and CHURNWATCH_TOPIC_PREFIX for a sandbox).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.scorer import data_problems
from shared.db import build_engine, session_factory
from shared.settings import CommonSettings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    problems = sub.add_parser("data-problem", help="data problems (silent sources): list, release held alerts")
    action = problems.add_subparsers(dest="problem_action", required=True)
    action.add_parser("list", help="the data problems open now, and who released which")
    release = action.add_parser("release", help="stop holding back the alerts an open data problem held")
    release.add_argument("problem", help='as listed, e.g. "source:mobile-app" or "accounts:went-quiet"')
    release.add_argument("--by", required=True, help="who releases it (recorded)")


async def _run(args: argparse.Namespace) -> int:
    settings = CommonSettings()
    engine = build_engine(settings)
    try:
        async with session_factory(engine)() as session, session.begin():
            if args.problem_action == "list":
                for p in await data_problems.open_problems(session, settings.topics.events):
                    state = f"released by {p.released_by} {p.released_at:%Y-%m-%d %H:%M}" if p.released_by else "held"
                    parts = ",".join(map(str, p.partitions))
                    print(f"{p.problem:40}  since {p.since}  partitions {parts}  {state}")
                return 0
            found = await data_problems.release(session, settings.topics.events, args.problem, args.by)
        if found is None:
            print(f"churnwatch data-problem: no open data problem {args.problem!r} (see: list)", file=sys.stderr)
            return 1
        print(f"released {found.problem} (since {found.since}): its held alerts go out at the next day close")
        return 0
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
