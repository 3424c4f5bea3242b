"""A steady load on ingest, as a well-behaved client sends it: batches at a configurable rate, each batch retried
as a whole after the Retry-After a 429/503 names, and every event id answered 2xx recorded.

Used by the fault suite (tests/faults) and by bench/end_to_end.py. ``rate`` may be changed while it runs (a
burst); ``max_in_flight`` bounds the client's concurrent requests, and a tick that finds it full is counted as
``skipped`` (the load this client could not offer).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

Event = dict[str, Any]
BatchMaker = Callable[[int], list[Event]]


def login(account: str, user: int, at: datetime, event_id: str | None = None) -> Event:
    return {
        "kind": "usage",
        "action": "login",
        "event_id": event_id or f"ev-{uuid.uuid4().hex[:16]}",
        "account_id": account,
        "user_id": f"{account}-u{user}",
        "occurred_at": at.isoformat(),
    }


def steady_logins(tag: str, accounts: int, seed: int = 7) -> BatchMaker:
    """Logins of ``accounts`` accounts happening now: the background of every scenario."""
    rng = random.Random(seed)

    def make(n: int) -> list[Event]:
        now = datetime.now(UTC)
        return [login(f"{tag}-{rng.randrange(accounts)}", rng.randrange(5), now) for _ in range(n)]

    return make


@dataclass
class MessyClients:
    """Scenario 5's inputs: ``dup`` of events are copies of earlier ones (client retries), ``disorder`` happened up
    to 3 days ago (arriving out of order), ``late`` 10 days ago (past the grace period: counted as late),
    ``ahead`` come from a client whose clock is 3 hours fast."""

    tag: str
    accounts: int
    dup: float = 0.10
    disorder: float = 0.05
    late: float = 0.02
    ahead: float = 0.02
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    earlier: list[Event] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def make(self, n: int) -> list[Event]:
        now = datetime.now(UTC)
        out: list[Event] = []
        for _ in range(n):
            r = self.rng.random()
            account, user = f"{self.tag}-{self.rng.randrange(self.accounts)}", self.rng.randrange(5)
            if r < self.dup and self.earlier:
                kind, event = "dup", dict(self.rng.choice(self.earlier))
            elif (r := r - self.dup) < self.disorder:
                kind, event = "disorder", login(account, user, now - timedelta(hours=self.rng.uniform(1, 72)))
            elif (r := r - self.disorder) < self.late:
                kind, event = "late", login(account, user, now - timedelta(days=10))
            elif r - self.late < self.ahead:
                kind, event = "ahead", login(account, user, now + timedelta(hours=3))
            else:
                kind, event = "now", login(account, user, now)
            self.kinds[kind] += 1
            out.append(event)
            if kind not in ("dup", "late") and len(self.earlier) < 5000:  # a late copy would count as late again
                self.earlier.append(event)
        return out


@dataclass
class LoadFigures:
    acknowledged: set[str] = field(default_factory=set)  # event ids answered 2xx
    answers: Counter[int] = field(default_factory=Counter)  # HTTP status -> responses
    no_answer: Counter[str] = field(default_factory=Counter)  # exception name -> requests that got no answer
    missing_retry_after: int = 0  # 429/503 without a usable Retry-After
    events_offered: int = 0
    skipped_ticks: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, status; 0 = no answer)
    latencies: dict[int, list[float]] = field(default_factory=dict)  # status -> seconds each answer took

    def first_success_after(self, t: float) -> float | None:
        return next((at for at, status in self.timeline if at >= t and 200 <= status < 300), None)

    def latency_quantiles(self, status: int | None = None) -> dict[str, float]:
        """p50/p95/p99/max in seconds of the answers with ``status`` (all answers when None)."""
        values = sorted(v for s, vs in self.latencies.items() if status in (None, s) for v in vs)
        if not values:
            return {}
        pick = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}
        return {k: round(values[min(len(values) - 1, int(q * len(values)))], 3) for k, q in pick.items()}

    def unexpected_5xx(self) -> dict[int, int]:
        return {s: n for s, n in self.answers.items() if s >= 500 and s != 503}


class SteadyLoad:
    def __init__(
        self,
        url: str,
        api_key: str,
        make_batch: BatchMaker,
        *,
        rate: float,
        batch: int = 20,
        max_in_flight: int = 64,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.rate = rate  # events per second; change it while running for a burst
        self.batch = batch
        self.max_in_flight = max_in_flight
        self.figures = LoadFigures()
        self._make = make_batch
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
        async with httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=self._timeout, limits=limits
        ) as client:
            next_tick = time.monotonic()
            while not stop.is_set():
                if len(self._tasks) < self.max_in_flight:
                    events = self._make(self.batch)
                    self.figures.events_offered += len(events)
                    task = asyncio.create_task(self._deliver(client, events, stop))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    self.figures.skipped_ticks += 1
                next_tick += self.batch / self.rate
                with contextlib.suppress(TimeoutError):  # the tick's pace, interrupted by stop
                    await asyncio.wait_for(stop.wait(), max(0.0, next_tick - time.monotonic()))
                next_tick = max(next_tick, time.monotonic() - 1.0)  # after a stall, no catch-up storm
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver(self, client: httpx.AsyncClient, events: list[Event], stop: asyncio.Event) -> None:
        """Posts one batch until it is accepted, rejected, or the load stops (then its ids are not acknowledged)."""
        while True:
            wait = await self._post_once(client, events)
            if wait is None or stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return

    async def _post_once(self, client: httpx.AsyncClient, events: list[Event]) -> float | None:
        """One request; the seconds to wait before trying again, or None when the batch is done."""
        started = time.monotonic()
        try:
            resp = await client.post("/v1/events", json={"events": events})
        except httpx.HTTPError as exc:
            self.figures.no_answer[type(exc).__name__] += 1
            self.figures.timeline.append((time.monotonic(), 0))
            return 1.0
        now = time.monotonic()
        self.figures.answers[resp.status_code] += 1
        self.figures.timeline.append((now, resp.status_code))
        self.figures.latencies.setdefault(resp.status_code, []).append(now - started)
        if resp.is_success:
            self.figures.acknowledged.update(e["event_id"] for e in events)
            return None
        if resp.status_code in (429, 503):
            try:
                return max(0.0, float(resp.headers["Retry-After"]))
            except (KeyError, ValueError):
                self.figures.missing_retry_after += 1
                return 1.0
        return None  # 4xx: the batch is refused for good (counted in answers)


def sliding_history(account: str, end: datetime) -> list[Event]:
    """35 days of an account: 28 of steady use, then a week of little use and urgent tickets (raises signals)."""
    events: list[Event] = []
    for d in range(35):
        at = end - timedelta(days=34 - d)
        for k in range(10 if d < 28 else 1):
            events.append(login(account, k, at, f"{account}-l-{d}-{k}"))
        if d >= 30:
            ticket = {"kind": "ticket", "action": "opened", "ticket_id": f"T{d}", "priority": "urgent"}
            events.append(
                {**ticket, "event_id": f"{account}-t-{d}", "account_id": account, "occurred_at": at.isoformat()}
            )
    return events
