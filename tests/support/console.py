"""What the console's tests and bench/console.py share: seeded scorer rows, the console's environment, a user.

``seed_accounts`` writes the scorer's read tables (health, profiles, daily history) straight from SQL, as a
scorer would have left them, so the list can be measured at 10,000 accounts without scoring months of events.
It is for tests and benches only: in a deployment only the scorer writes these tables.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.console.users import create_user
from shared.settings import CommonSettings
from tests.support.read_access import READER, SERVICE_TOKEN  # the console's read credential

__all__ = ["READER", "SERVICE_TOKEN"]

HOSTILE_NAME = "<script>alert(1)</script>"
PASSWORD = "correct horse battery staple"
SESSION_SECRET = "console-session-secret-0123456789abcdef"
CSMS = ("ana@csm.example.com", "bo@csm.example.com", "cy@csm.example.com", "di@csm.example.com")
PLANS = ("starter", "growth", "enterprise")
TIERS = ("high", "low", "tech")

_SEED_PROFILES = text(
    "INSERT INTO account_profiles (account_id, profile)"
    " SELECT 'acct-' || lpad(i::text, 5, '0'), jsonb_build_object("
    "  'account_id', 'acct-' || lpad(i::text, 5, '0'),"
    "  'name', CASE WHEN i = 1 THEN CAST(:hostile AS text) ELSE 'Company ' || i END,"
    "  'plan', (CAST(:plans AS text[]))[1 + i % 3], 'arr', 1000 * (1 + i % 97), 'seats_purchased', 5 + i % 40,"
    "  'touch_tier', (CAST(:tiers AS text[]))[1 + i % 3], 'lifecycle_stage', 'adoption',"
    "  'renewal_date', to_char(CAST(:today AS date) + (i % 365), 'YYYY-MM-DD'),"
    "  'csm', jsonb_build_object('name', initcap(split_part((CAST(:csms AS text[]))[1 + i % 4], '@', 1)),"
    "   'email', (CAST(:csms AS text[]))[1 + i % 4]),"
    "  'support_route', jsonb_build_object('email', 'help@support.example.com'))"
    " FROM generate_series(1, :count) AS i"
)
_SEED_HEALTH = text(
    "INSERT INTO account_health (account_id, state, score, band, components, active_signals, explanation, as_of,"
    " history, scorecard, risk)"
    " SELECT 'acct-' || lpad(i::text, 5, '0'), '{}'::jsonb, s, CASE WHEN s < 40 THEN 'red' WHEN s < 70 THEN 'yellow'"
    " ELSE 'green' END, jsonb_build_array(jsonb_build_object('name', 'usage_trend', 'value', 0.8, 'points', 60,"
    " 'contribution', s / 2, 'change_7d', -5.0), jsonb_build_object('name', 'recency', 'value', 2,"
    " 'points', 80, 'contribution', s / 2, 'change_7d', 0.0)),"
    " CASE WHEN i % 5 = 0 THEN jsonb_build_object('usage_drop', jsonb_build_object('severity', 'warning'))"
    " ELSE '{}'::jsonb END,"
    " 'logins ' || (i % 60) || '% below the 28 days before', CAST(:now AS timestamptz), '{}'::jsonb, 'default',"
    " (i % 100) / 100.0"
    " FROM (SELECT i, round(CAST((i * 37) % 100 AS numeric), 1)::float8 AS s"
    " FROM generate_series(1, :count) AS i) AS t"
)
_SEED_HISTORY = text(
    "INSERT INTO score_history (account_id, day, score, band)"
    " SELECT h.account_id, CAST(:today AS date) - d, least(100, h.score + d * (h.score::int % 3)), h.band"
    " FROM account_health h, generate_series(0, :days - 1) AS d"
)


async def seed_accounts(engine: AsyncEngine, count: int, *, days: int = 30, now: datetime | None = None) -> None:
    """``count`` scored accounts acct-00001..: four CSMs, three plans and tiers, scores spread over the bands,
    every fifth with an active usage_drop, ``days`` of daily history; acct-00001 carries a hostile name."""
    now = now or datetime.now(UTC)
    params = {"count": count, "today": now.date(), "now": now, "days": days}
    async with engine.begin() as conn:
        await conn.execute(
            _SEED_PROFILES,
            {**params, "hostile": HOSTILE_NAME, "plans": list(PLANS), "tiers": list(TIERS), "csms": list(CSMS)},
        )
        await conn.execute(_SEED_HEALTH, params)
        await conn.execute(_SEED_HISTORY, params)


def with_service_token(env: Mapping[str, str]) -> dict[str, str]:
    """A scorer's or alerter's environment that accepts the console's read credential."""
    return {**env, "CHURNWATCH_SERVICE_TOKEN": SERVICE_TOKEN}


def console_env(
    sandbox_env: Mapping[str, str], *, scorer_url: str, alerter_url: str, alerter_token: str, **extra: str
) -> dict[str, str]:
    return {
        **sandbox_env,
        "CHURNWATCH_CONSOLE_SCORER_URL": scorer_url,
        "CHURNWATCH_CONSOLE_ALERTER_URL": alerter_url,
        "CHURNWATCH_ALERTER_API_TOKEN": alerter_token,
        "CHURNWATCH_CONSOLE_SESSION_SECRET": SESSION_SECRET,
        "CHURNWATCH_CONSOLE_READ_API_KEY": SERVICE_TOKEN,
        "CHURNWATCH_LOG_LEVEL": "WARNING",
        **extra,
    }


async def add_user(settings: CommonSettings, email: str, name: str, password: str = PASSWORD) -> None:
    await create_user(settings, email=email, name=name, password=password)


def csrf_of(page: str) -> str:
    """The CSRF token in a rendered page's first form."""
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, f"no CSRF field in the page: {page[:500]}"
    return match.group(1)


async def signed_in_client(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.AsyncClient:
    """Signs the client in through the login form (as a browser would) and returns it."""
    page = await client.get("/login")
    resp = await client.post("/login", data={"email": email, "password": password, "csrf": csrf_of(page.text)})
    assert resp.status_code == 303, (resp.status_code, resp.text[:500])
    return client


@contextlib.asynccontextmanager
async def console_client(settings: ConsoleSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The console app in this process (its upstreams are real HTTP), with a cookie-keeping client."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            yield client
    finally:
        await app.state.scorer.client.aclose()
        await app.state.alerter.client.aclose()
        await app.state.engine.dispose()
