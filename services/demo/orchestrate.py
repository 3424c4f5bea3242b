"""``churnwatch demo``: start the local stack and the three services, stream simulated accounts, show alerts.

Every run gets its own topic prefix and database schema (``demo-<time>`` / ``demo_<time>``), so a second
run starts from nothing and fires its alerts again; the previous runs' topics and schemas are removed first.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from services.demo.processes import REPO_ROOT, SERVICE_PORTS, running
from services.demo.sandbox import SandboxName, delete_topics, drop_schemas, prepare
from services.demo.sender import simulate
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from shared.db import build_engine
from shared.settings import CommonSettings


async def _forget_previous_runs(settings: CommonSettings) -> None:
    """Best effort: drop the schemas and topics earlier demo runs left behind."""
    engine = build_engine(settings)
    try:
        async with engine.connect() as conn:
            query = text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'demo\\_%'")
            schemas = list((await conn.execute(query)).scalars())
    finally:
        await engine.dispose()
    await drop_schemas(settings, *schemas)
    await delete_topics(settings, "demo-")


async def _summary(settings: CommonSettings, scorer_url: str) -> str:
    engine = build_engine(settings)
    try:
        async with engine.connect() as conn:
            bands = (await conn.execute(text("SELECT band, count(*) FROM account_health GROUP BY band"))).all()
            alerts = (
                await conn.execute(
                    text("SELECT signal_type, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY signal_type")
                )
            ).all()
            sent = (await conn.execute(text("SELECT channel, status, count(*) FROM deliveries GROUP BY 1, 2"))).all()
    finally:
        await engine.dispose()
    async with httpx.AsyncClient() as client:
        at_risk = (await client.get(f"{scorer_url}/v1/accounts", params={"band": "red", "limit": 5})).json()
    lines = [
        "accounts by band:   " + ", ".join(f"{b}={n}" for b, n in bands),
        "open alerts:        " + ", ".join(f"{t}={n}" for t, n in alerts),
        "deliveries:         " + ", ".join(f"{c}/{s}={n}" for c, s, n in sent),
        f"most at risk (GET {scorer_url}/v1/accounts?band=red):",
    ]
    for a in at_risk.get("accounts", []):
        lines.append(f"  {a.get('account_id')}  score {a.get('score')}  ARR {a.get('arr')}  {a.get('explanation')}")
    return "\n".join(lines)


def run_demo(*, accounts: int, days: int, day_seconds: float, linger: float) -> int:
    if subprocess.call(["bash", str(REPO_ROOT / "deploy" / "local-stack.sh"), "up"]) != 0:
        print("local stack did not start", file=sys.stderr)
        return 1
    name = SandboxName.fresh("demo", datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    settings = name.settings()
    asyncio.run(_forget_previous_runs(settings))
    asyncio.run(prepare(settings))
    key = asyncio.run(issue_key(settings, name="demo", scopes=frozenset(Scope)))
    env = {
        **name.env,
        "CHURNWATCH_CONSOLE_ALERTS": "true",
        "CHURNWATCH_EMAIL_ENABLED": "false",
        "CHURNWATCH_LOG_LEVEL": "WARNING",
        # the demo plays its simulated days as live (a day a second): its signals are news, not a backfill
        "CHURNWATCH_NOTIFY_MAX_AGE_SECONDS": str((days + 2) * 86_400),
    }
    with running(SERVICE_PORTS, env, stdout=sys.stdout) as services:
        print(f"services ready: {', '.join(f'{s.name} {s.url}' for s in services.values())}")
        print(f"streaming {days} simulated days for {accounts} accounts; alerts print as they fire ...", flush=True)
        bearer = {"Authorization": f"Bearer {key}"}
        sent = asyncio.run(
            simulate(services["ingest"].url, accounts=accounts, days=days, day_seconds=day_seconds, headers=bearer)
        )
        print(f"simulation sent {sent} events; watching alerts for {linger:.0f}s more", flush=True)
        time.sleep(linger)  # the demo's own run time: let the last alerts arrive on screen
        print(asyncio.run(_summary(settings, services["scorer"].url)), flush=True)
    return 0
