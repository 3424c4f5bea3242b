"""One fault scenario from start to its results row: the pipeline on the private stack, the receivers, a steady
load, accounts that slide into risk (so alerts flow), and the invariant checks at the end.

Each scenario prints one row and appends it as JSON to ``test-output/faults/results.jsonl`` (override with
CHURNWATCH_FAULTS_RESULTS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from services.demo.processes import REPO_ROOT
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from shared.consumer_progress import caught_up, events_left
from tests.faults.invariants import check_dead_letters, check_deliveries, check_events, distinct_signals
from tests.faults.scale import Scale
from tests.support.fault_stack import FaultSandbox, OffsetSampler, Pipeline
from tests.support.load import BatchMaker, SteadyLoad, sliding_history
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer

RESULTS = Path(os.environ.get("CHURNWATCH_FAULTS_RESULTS", REPO_ROOT / "test-output" / "faults" / "results.jsonl"))
DELIVERY_WORKERS = 2


def alerter_env(slack: SlackWebhookServer, smtp_port: int, scale: Scale) -> dict[str, str]:
    return {
        "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url_for("default"),
        "CHURNWATCH_SLACK_WEBHOOKS": json.dumps({"csm": slack.url_for("csm"), "support": slack.url_for("support")}),
        "CHURNWATCH_SMTP_HOST": "127.0.0.1",
        "CHURNWATCH_SMTP_PORT": str(smtp_port),
        "CHURNWATCH_DELIVERY_WORKERS": str(DELIVERY_WORKERS),
        "CHURNWATCH_DELIVERY_BACKOFF_SECONDS": str(scale.backoff_seconds),
        "CHURNWATCH_DELIVERY_BACKOFF_CAP_SECONDS": str(scale.backoff_cap_seconds),
        "CHURNWATCH_SLACK_MIN_INTERVAL_SECONDS": "0.05",
        "CHURNWATCH_CLOCK_INTERVAL_SECONDS": "1",
        # grouping only delays notices (5 s / 300 s by default): short, so a scenario settles in its budget
        "CHURNWATCH_GROUP_WAIT_SECONDS": "0.5",
        "CHURNWATCH_GROUP_INTERVAL_SECONDS": "1",
    }


class Scenario:
    def __init__(self, name: str, box: FaultSandbox, scale: Scale) -> None:
        self.name = name
        self.box = box
        self.scale = scale
        self.slack = SlackWebhookServer().start()
        self.mail = [SmtpServer().start()]
        env = {"alerter": alerter_env(self.slack, self.mail[0].port, scale)}
        self.pipeline = Pipeline(box, env)
        self.offsets = OffsetSampler(box)
        self.poison: set[bytes] = set()
        self.crash_edge = 0  # duplicates the documented edge allows (one per worker per kill/outage)
        self.recoveries: list[float] = []
        self.notes: dict[str, Any] = {}
        self.violations: list[str] = []
        self.key = ""
        self.load: SteadyLoad | None = None
        self._stop = asyncio.Event()
        self._began = time.monotonic()
        self.phases: dict[str, float] = {}  # phase -> seconds since the scenario began, for the row
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, scorers: int = 1) -> None:
        self.pipeline.start("ingest")
        for i in range(scorers):
            self.pipeline.start(f"scorer-{i}", "scorer")
        self.pipeline.start("alerter")
        await self.pipeline.wait_ready(120)
        self.mark("ready")
        self.key = await issue_key(self.box.settings, name=self.name, scopes=frozenset(Scope))

    def start_load(self, make_batch: BatchMaker, *, rate: float | None = None, **kw: Any) -> SteadyLoad:
        self.load = SteadyLoad(self.pipeline.url("ingest"), self.key, make_batch, rate=rate or self.scale.rate, **kw)
        self._tasks += [
            asyncio.create_task(self.load.run(self._stop)),
            asyncio.create_task(self.offsets.run(self._stop)),
            asyncio.create_task(self._sample_rss()),
        ]
        return self.load

    async def _sample_rss(self) -> None:
        while not self._stop.is_set():
            self.pipeline.sample_rss()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)

    async def sliding_accounts(self, n: int, tag: str) -> None:
        """Accounts whose use collapses this week: their signals make alerts, so deliveries flow."""
        assert self.load is not None
        end = datetime.now(UTC).replace(microsecond=0)
        async with httpx.AsyncClient(base_url=self.pipeline.url("ingest"), timeout=60) as client:
            client.headers["Authorization"] = f"Bearer {self.key}"
            for i in range(n):
                account = f"{tag}-{i}"
                profile = {
                    "name": f"Account {account}",
                    "arr": 120000,
                    "touch_tier": "high",
                    "csm": {"name": "Ana", "email": "ana@csm.example.com", "slack": "@ana"},
                }
                await _until_accepted(client, "PUT", f"/v1/accounts/{account}", profile)
                events = sliding_history(account, end)
                await _until_accepted(client, "POST", "/v1/events", {"events": events})
                self.load.figures.acknowledged.update(e["event_id"] for e in events)
        self.mark(f"{tag} posted")

    def mark(self, phase: str) -> None:
        self.phases[phase] = round(time.monotonic() - self._began, 1)

    async def recovered(self, since: float, within: float = 180.0) -> float:
        """Seconds from ``since`` (the dependency back) until every service is ready and ingest answered 2xx."""
        assert self.load is not None
        load = self.load

        async def back() -> bool:
            self.pipeline.check_running()
            return not await self.pipeline.not_ready() and load.figures.first_success_after(since) is not None

        await await_until(back, within=within, what=f"{self.name}: every service ready and ingest accepting")
        seconds = time.monotonic() - since
        self.recoveries.append(round(seconds, 2))
        return seconds

    def smtp_down(self) -> None:
        self.mail[-1].stop()

    def smtp_up(self) -> None:
        self.mail.append(SmtpServer(self.mail[0].port).start())

    async def finish(self) -> dict[str, Any]:
        """Stops the load, waits for the pipeline to settle, checks I1-I4, prints and records the row."""
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self.box.engine.dispose()  # connections from before an outage
        self.mark("load stopped")
        try:
            await self._settle()
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self._diagnosis()}") from None
        self.mark("settled")
        row = await self._row()
        print("\n" + _line(row), flush=True)
        await asyncio.to_thread(_append, row)
        return row

    async def _settle(self) -> None:
        box, within = self.box, self.scale.settle_seconds
        await await_until(lambda: caught_up(box.engine, box.settings), within=within, what="the scorer caught up")
        await await_until(lambda: _count(box, "signal_outbox", 0), within=within, what="the signal outbox drained")
        signals = await distinct_signals(box)
        await await_until(
            lambda: _at_least(box, "processed_signals", signals), within=within, what=f"alerter read {signals}"
        )
        await await_until(
            lambda: _count(box, "deliveries WHERE status = 'pending'", 0), within=within, what="the outbox drained"
        )

    async def _diagnosis(self) -> str:
        """What an unsettled pipeline looked like: readiness, events left, and the logs' folder."""
        async with httpx.AsyncClient(timeout=3.0) as client:
            ready = {}
            for name, p in self.pipeline.procs.items():
                try:
                    ready[name] = (await client.get(f"{p.url}/readyz")).text[:400]
                except httpx.HTTPError as exc:
                    ready[name] = repr(exc)
        left = await events_left(self.box.engine, self.box.settings)
        return f"events left {left}; /readyz {ready}; phases {self.phases}; logs in {self.box.logs}"

    async def _row(self) -> dict[str, Any]:
        assert self.load is not None
        figures = self.load.figures
        events = await check_events(self.box, figures.acknowledged)
        if events.lost or events.duplicated:  # a lag rather than a loss would converge: look again once
            await asyncio.sleep(10)  # a fixed second look, reported as such; not a synchronisation
            again = await check_events(self.box, figures.acknowledged)
            self.notes["I1_after_10s"] = {"lost": again.lost, "duplicated": again.duplicated}
        deliveries = await check_deliveries(self.box, self.slack, self.mail)
        dead_letters, dead_problems = await check_dead_letters(self.box, self.poison)
        v = self.violations
        if events.lost or events.duplicated or events.accounts_differing:
            v.append(f"I1: lost {events.lost}, duplicated {events.duplicated}, differ {events.accounts_differing}")
        if events.missing_from_topic:
            v.append(f"I1: acknowledged but not on the topic: {events.missing_from_topic}")
        if self.offsets.backwards:
            v.append(f"I2: offsets moved back: {self.offsets.backwards[:5]}")
        if deliveries.duplicated > self.crash_edge or deliveries.lost or deliveries.dead:
            v.append(f"I3: {asdict(deliveries)} (crash edge allows {self.crash_edge} duplicates)")
        v += [f"I4: {p}" for p in dead_problems]
        return {
            "scenario": self.name,
            "scale": self.scale.name,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "events": asdict(events),
            "deliveries": asdict(deliveries),
            "crash_edge_allowed": self.crash_edge,
            "dead_letters": dead_letters,
            "poison_sent": len(self.poison),
            "recover_seconds": self.recoveries,
            "offset_samples": self.offsets.samples,
            "answers": {str(k): n for k, n in sorted(figures.answers.items())},
            "no_answer": dict(figures.no_answer),
            "events_offered": figures.events_offered,
            "skipped_ticks": figures.skipped_ticks,
            "peak_rss_mb": {k: round(kb / 1024, 1) for k, kb in sorted(self.pipeline.peak_rss_kb.items())},
            "notes": self.notes,
            "phases": self.phases,
            "log_lines": await asyncio.to_thread(self._log_lines),
            "scorer_records": await self._scorer_records(),
            "violations": v,
        }

    async def _scorer_records(self) -> dict[str, dict[str, float]]:
        """Each live scorer's churnwatch_consumer_records_total by outcome (since its last start): records folded
        against records on the topic tell a skipped range from a wrong fold."""
        out: dict[str, dict[str, float]] = {}
        async with httpx.AsyncClient(timeout=5.0) as client:
            for name, p in self.pipeline.procs.items():
                if not name.startswith("scorer"):
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    body = (await client.get(f"{p.url}/metrics")).text
                    found = re.findall(r'^churnwatch_consumer_records_total\{.*outcome="(\w+)".*\} (\S+)$', body, re.M)
                    out[name] = {outcome: float(v) for outcome, v in found}
        return out

    def _log_lines(self) -> dict[str, dict[str, int]]:
        """Per process log: lines and tracebacks (issue 13 #5: one line per state change is what operators want)."""
        out = {}
        for log in sorted(self.box.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            out[log.stem] = {"lines": len(lines), "tracebacks": sum(line.startswith("Traceback") for line in lines)}
        return out

    def close(self) -> None:
        self.pipeline.stop_all()
        self.slack.stop()
        with contextlib.suppress(Exception):
            self.mail[-1].stop()


def _append(row: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(row) + "\n")


def _line(row: dict[str, Any]) -> str:
    e, d = row["events"], row["deliveries"]
    recover = max(row["recover_seconds"], default=0.0)
    return (
        f"| {row['scenario']:<18} | {row['scale']:<5} | events sent {e['sent']} counted {e['counted']}/{e['expected']} "
        f"lost {e['lost']} dup {e['duplicated']} | deliveries expected {d['expected']} sent {d['sent']} "
        f"dup {d['duplicated']} (edge<={row['crash_edge_allowed']}) dead {d['dead']} | dead letters "
        f"{row['dead_letters']}/{row['poison_sent']} | recover {recover:.1f}s | "
        f"{'OK' if not row['violations'] else 'VIOLATED: ' + '; '.join(row['violations'])} |"
    )


async def _until_accepted(client: httpx.AsyncClient, method: str, url: str, body: Any) -> None:
    for _ in range(120):
        with contextlib.suppress(httpx.HTTPError):
            resp = await client.request(method, url, json=body)
            if resp.is_success:
                return
            assert resp.status_code in (429, 503), f"{method} {url}: {resp.status_code} {resp.text[:300]}"
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))  # what the server asked for
            continue
        await asyncio.sleep(1.0)  # no answer: a client's pause before retrying
    raise AssertionError(f"{method} {url} never accepted")


async def _count(box: FaultSandbox, table_where: str, n: int) -> bool:
    async with box.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table_where}"))).scalar_one()) == n


async def _at_least(box: FaultSandbox, table: str, n: int) -> bool:
    async with box.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()) >= n
