"""``churnwatch demo``: start the local stack and the services, stream simulated accounts, show alerts.

The console (port 8003) runs beside them with a demo user made for the run (a simulated CSM, so "my accounts"
has accounts); its sign-in is printed when the services are ready.

Every run gets its own topic prefix and database schema (``demo-<time>`` / ``demo_<time>``), so a second
run starts from nothing and fires its alerts again; the previous runs' topics and schemas are removed first.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from services.demo.processes import REPO_ROOT, SERVICE_PORTS, running
from services.demo.sandbox import SandboxName, delete_topics, drop_schemas, prepare
from services.demo.sender import simulate
from services.demo.simulator import CSMS
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


async def _summary(settings: CommonSettings, scorer_url: str, read_key: str) -> str:
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
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {read_key}"}) as client:
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


def _console_user(settings: CommonSettings) -> tuple[str, str]:
    """A console user for this run: the first simulated CSM, with a fresh password (printed, never stored)."""
    from services.console.users import create_user

    name = CSMS[0]
    email = f"{name.split()[0].lower()}@csm.example.com"
    password = secrets.token_urlsafe(12)
    asyncio.run(create_user(settings, email=email, name=name, password=password))
    return email, password


def _console_env(read_key: str) -> dict[str, str]:
    backtests = REPO_ROOT / "backtests"
    return {
        "CHURNWATCH_CONSOLE_SCORER_URL": f"http://127.0.0.1:{SERVICE_PORTS['scorer']}",
        "CHURNWATCH_CONSOLE_ALERTER_URL": f"http://127.0.0.1:{SERVICE_PORTS['alerter']}",
        "CHURNWATCH_CONSOLE_READ_API_KEY": read_key,
        "CHURNWATCH_CONSOLE_SESSION_SECRET": secrets.token_urlsafe(32),
        # the alerter's write token, for the console's ack / snooze / resolve buttons (this run only)
        "CHURNWATCH_ALERTER_API_TOKEN": secrets.token_urlsafe(24),
        **({"CHURNWATCH_CONSOLE_BACKTEST_DIR": str(backtests)} if backtests.is_dir() else {}),
    }


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
        **_console_env(key),
    }
    email, password = _console_user(settings)
    with running(SERVICE_PORTS, env, stdout=sys.stdout) as services:
        print(f"services ready: {', '.join(f'{s.name} {s.url}' for s in services.values())}")
        print(f"console: {services['console'].url}  sign in as {email}, password {password} (made for this run)")
        print(f"streaming {days} simulated days for {accounts} accounts; alerts print as they fire ...", flush=True)
        bearer = {"Authorization": f"Bearer {key}"}
        sent = asyncio.run(
            simulate(services["ingest"].url, accounts=accounts, days=days, day_seconds=day_seconds, headers=bearer)
        )
        print(f"simulation sent {sent} events; watching alerts for {linger:.0f}s more", flush=True)
        time.sleep(linger)  # the demo's own run time: let the last alerts arrive on screen
        print(asyncio.run(_summary(settings, services["scorer"].url, key)), flush=True)
        print(f"console: {services['console'].url} (until this demo ends; --linger SECONDS keeps it longer)")
    return 0
