"""``churnwatch demo --backtest`` (``make backtest``): simulate -> backfill -> score -> backtest, end to end.

Months of history for a simulated customer base with known churn dates are written to files, backfilled into a
fresh sandbox exactly as a user would load their own history (``churnwatch backfill``), scored by a real scorer
process, and measured against the churn dates the simulator chose. The report lands beside the files.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import text

from services.backtest.cli import measure, write_outputs
from services.backtest.render import render_table
from services.backtest.source import load_inputs, read_outcomes_csv
from services.demo.history import days_in_months, write_history
from services.demo.processes import REPO_ROOT, free_port, running
from services.demo.sandbox import SandboxName, prepare
from shared.consumer_progress import events_left
from shared.db import build_engine
from shared.settings import CommonSettings

# Accounts with a day before the scorer's clock still to close (the sweep closes them once caught up).
_UNCLOSED = text(
    "SELECT count(*) FROM account_health WHERE closed_on < (SELECT (max(watermark) AT TIME ZONE 'UTC')::date - 1"
    " FROM scorer_clock)"
)


async def wait_until_scored(settings: CommonSettings, *, within: float, every: float = 5.0) -> float:
    """Polls until the scorer has committed every event and closed every day it can; returns the seconds taken."""
    engine = build_engine(settings)
    started = time.monotonic()
    try:
        while True:
            left = await events_left(engine, settings)
            async with engine.connect() as conn:
                unclosed = int((await conn.execute(_UNCLOSED)).scalar() or 0)
            elapsed = time.monotonic() - started
            if left == 0 and unclosed == 0:
                return elapsed
            if elapsed > within:
                raise TimeoutError(f"scorer not caught up after {within:.0f}s: {left} events, {unclosed} accounts left")
            print(f"  scoring: {left:,} events left, {unclosed:,} accounts with days to close ({elapsed:.0f} s)")
            await asyncio.sleep(every)  # a progress line per interval while a real process works
    finally:
        await engine.dispose()


def run_backtest_demo(*, accounts: int, months: int, seed: int, start: date, out_dir: Path | None) -> int:
    if subprocess.call(["bash", str(REPO_ROOT / "deploy" / "local-stack.sh"), "up"]) != 0:
        print("local stack did not start", file=sys.stderr)
        return 1
    tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    out_dir = out_dir or Path("backtests") / f"seed{seed}-{tag}"
    print(f"1/4 simulating {accounts} accounts over {months} months (seed {seed}) into {out_dir} ...", flush=True)
    manifest = write_history(out_dir, accounts=accounts, days=days_in_months(start, months), start=start, seed=seed)
    churn = f"{manifest.churners} churned accounts (base rate {manifest.base_rate:.1%} of account-weeks)"
    print(f"    {manifest.events:,} events, {churn}", flush=True)
    name = SandboxName.named(f"backtest-{tag}")
    settings = name.settings()
    asyncio.run(prepare(settings))
    print(f"2/4 backfilling into sandbox {name.topic_prefix} ...", flush=True)
    backfill = [sys.executable, "-m", "services.cli", "backfill", str(out_dir / "events.jsonl.gz")]
    backfill += ["--accounts", str(out_dir / "accounts.jsonl"), "--sandbox", name.topic_prefix]
    if subprocess.call(backfill, cwd=REPO_ROOT) != 0:
        print("backfill failed", file=sys.stderr)
        return 1
    print("3/4 scoring (a real scorer process) ...", flush=True)
    with running({"scorer": free_port()}, {**name.env, "CHURNWATCH_LOG_LEVEL": "WARNING"}):
        seconds = asyncio.run(wait_until_scored(settings, within=3600))
    print(f"    scored {manifest.events:,} events in {seconds:.0f} s", flush=True)
    print("4/4 backtest against the simulator's churn dates", flush=True)
    inputs = asyncio.run(load_inputs(settings, read_outcomes_csv(out_dir / "outcomes.csv")))
    report = measure(inputs)
    print(render_table(report))
    title = f"Churnwatch backtest: {accounts} simulated accounts, {months} months, seed {seed}"
    write_outputs(
        report,
        json_path=out_dir / "backtest.json",
        html_path=out_dir / "backtest.html",
        title=title,
        quality_path=out_dir / "rule_quality.json",
    )
    print(f"sandbox kept for the API and `churnwatch backtest --sandbox {name.topic_prefix}`")
    return 0
