"""Sends the simulated customer base to ingest over HTTP, one simulated day at a time."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from services.demo.simulator import SimulatedAccount, day_events, make_accounts

log = logging.getLogger(__name__)


async def post_with_retry(client: httpx.AsyncClient, method: str, url: str, body: Any, attempts: int = 20) -> None:
    """Retries what ingest asks to retry (503/429 with Retry-After), so the demo survives a broker hiccup."""
    for _ in range(attempts):
        resp = await client.request(method, url, json=body)
        if resp.status_code in (429, 503):
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
            continue
        resp.raise_for_status()
        return
    raise RuntimeError(f"{method} {url} kept failing")


async def send_accounts(client: httpx.AsyncClient, base_url: str, accounts: list[SimulatedAccount]) -> None:
    for a in accounts:
        body = a.profile.model_dump(mode="json", exclude={"account_id"})
        await post_with_retry(client, "PUT", f"{base_url}/v1/accounts/{a.profile.account_id}", body)


async def simulate(
    base_url: str,
    *,
    accounts: int = 200,
    days: int = 35,
    day_seconds: float = 0.0,
    seed: int = 7,
    end: date | None = None,
    batch_size: int = 500,
    headers: dict[str, str] | None = None,
) -> int:
    """Streams ``days`` days of history ending at ``end`` (default today); returns events sent."""
    end = end or datetime.now(UTC).date()
    sim = make_accounts(accounts, seed=seed)
    sent = 0
    async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
        await send_accounts(client, base_url, sim)
        for i in range(days):
            day = end - timedelta(days=days - 1 - i)
            events = [e for a in sim for e in day_events(a, day, day_index=i, days=days, seed=seed)]
            batches = [events[j : j + batch_size] for j in range(0, len(events), batch_size)]
            await asyncio.gather(
                *(post_with_retry(client, "POST", f"{base_url}/v1/events", {"events": b}) for b in batches)
            )
            sent += len(events)
            log.info("simulated %s: %d events", day, len(events))
            if day_seconds:
                await asyncio.sleep(day_seconds)  # pacing so a person can watch the days go by
    return sent
