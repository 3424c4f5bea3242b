"""The fault suite's own broker and database, and the three services as processes pointed at them.

The shared Kafka (9092) and PostgreSQL (5432) serve everyone's tests, so the fault suite never touches them:
it starts a private broker (deploy/kafka.sh under its own CHURNWATCH_HOME and ports) and a private PostgreSQL
cluster (deploy/postgres.sh, cluster ``faults``), and kills, stops and restarts only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services.demo.processes import REPO_ROOT, ServiceProcess, free_port
from services.demo.sandbox import SandboxName, delete_topics, drop_schemas, prepare
from shared.consumer_progress import scorer_group, stored_offsets
from shared.db import build_engine
from shared.settings import CommonSettings

# where deploy/kafka.sh keeps the shared stack's jars (its default CHURNWATCH_HOME)
SHARED_KAFKA_HOME = Path(
    os.environ.get("CHURNWATCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "churnwatch"
)


def _script(name: str, action: str, env: Mapping[str, str], timeout: float = 240) -> None:
    command = ["bash", str(REPO_ROOT / "deploy" / name), action]
    proc = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} {action} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


class PrivateKafka:
    """A broker of our own: its own CHURNWATCH_HOME (data, pid, lock) and ports; the jars are shared read-only."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        home.mkdir(parents=True, exist_ok=True)
        for jars in SHARED_KAFKA_HOME.glob("kafka-*"):  # the fetched jars: a link instead of a Maven run
            if jars.is_dir() and (jars / ".complete").exists() and not (home / jars.name).exists():
                (home / jars.name).symlink_to(jars)
        self._env = {
            **os.environ,
            "CHURNWATCH_HOME": str(home),
            "CHURNWATCH_KAFKA_PORT": str(self.port),
            "CHURNWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        _script("kafka.sh", "start", self._env)

    def kill(self) -> None:
        """SIGKILL of our broker only (kafka.sh checks the pid file names our config)."""
        _script("kafka.sh", "kill", self._env)

    def stop(self) -> None:
        _script("kafka.sh", "stop", self._env)

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.home, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of our own (Debian cluster ``faults``), never the shared ``main``."""

    def __init__(self, home: Path, port: int, cluster: str = "faults") -> None:
        assert port != 5432, "the fault suite must not run on the shared PostgreSQL port"
        self.port = port
        self._env = {
            **os.environ,
            "CHURNWATCH_HOME": str(home),  # its lock file, apart from the shared one
            "CHURNWATCH_PG_PORT": str(port),
            "CHURNWATCH_PG_CLUSTER": cluster,
        }

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://churnwatch:churnwatch@127.0.0.1:{self.port}/churnwatch?ssl=disable"

    def start(self) -> None:
        _script("postgres.sh", "start", self._env)

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, like a database that went away."""
        _script("postgres.sh", "stop", self._env)


@dataclass(frozen=True)
class FaultStack:
    kafka: PrivateKafka
    postgres: PrivatePostgres

    def settings(self, name: SandboxName, partitions: int) -> CommonSettings:
        return name.settings(
            kafka_bootstrap_servers=self.kafka.bootstrap,
            database_url=self.postgres.database_url,
            events_partitions=partitions,
        )


@dataclass(frozen=True)
class FaultSandbox:
    """One scenario's topics and schema on the private stack, and the environment its processes get."""

    settings: CommonSettings
    env: dict[str, str]
    engine: AsyncEngine
    logs: Path


@contextlib.asynccontextmanager
async def fault_sandbox(stack: FaultStack, kind: str, logs: Path, partitions: int = 3) -> AsyncIterator[FaultSandbox]:
    name = SandboxName.fresh(kind)
    settings = stack.settings(name, partitions)
    await prepare(settings)
    env = {
        **name.env,
        "CHURNWATCH_KAFKA_BOOTSTRAP_SERVERS": stack.kafka.bootstrap,
        "CHURNWATCH_DATABASE_URL": stack.postgres.database_url,
        "CHURNWATCH_EVENTS_PARTITIONS": str(partitions),
        "CHURNWATCH_LOG_LEVEL": "WARNING",
    }
    engine = build_engine(settings)
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    try:
        yield FaultSandbox(settings, env, engine, logs)
    finally:
        await engine.dispose()
        with contextlib.suppress(Exception):  # a scenario that failed may leave the stack down
            await delete_topics(settings, f"{name.topic_prefix}.")
            await drop_schemas(settings, name.schema)


@dataclass
class Pipeline:
    """ingest, scorer(s) and alerter as real processes, each logging to its own file."""

    box: FaultSandbox
    env: dict[str, dict[str, str]]
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    _logs: list[IO[str]] = field(default_factory=list)

    def start(self, name: str, service: str | None = None) -> ServiceProcess:
        service = service or name
        log = (self.box.logs / f"{name}.log").open("a")
        self._logs.append(log)
        old = self.procs.get(name)
        port = old.port if old else free_port()
        self.procs[name] = ServiceProcess(service, {**self.box.env, **self.env.get(service, {})}, port, stdout=log)
        return self.procs[name].start()

    def url(self, name: str) -> str:
        return self.procs[name].url

    def kill(self, name: str) -> None:
        self.sample_rss()
        self.procs[name].kill()

    def stop(self, name: str) -> None:
        self.sample_rss()
        self.procs[name].stop()
        del self.procs[name]

    async def wait_ready(self, within: float = 90.0) -> float:
        """Seconds until every running process answers /readyz 200; fails naming the laggard."""
        started = time.monotonic()
        for p in list(self.procs.values()):
            await asyncio.to_thread(p.wait_ready, max(1.0, within - (time.monotonic() - started)))
        return time.monotonic() - started

    async def not_ready(self) -> list[str]:
        out: list[str] = []
        async with httpx.AsyncClient(timeout=3.0) as client:
            for name, p in self.procs.items():
                try:
                    ok = (await client.get(f"{p.url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    out.append(name)
        return out

    def check_running(self) -> None:
        for p in self.procs.values():
            p.check_running()

    def sample_rss(self) -> None:
        """VmHWM: the kernel's peak resident set of each live process, kept per service."""
        for name, p in self.procs.items():
            if p.proc is None or p.proc.poll() is not None:
                continue
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{p.proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        self.peak_rss_kb[name] = max(self.peak_rss_kb.get(name, 0), kb)

    def stop_all(self) -> None:
        self.sample_rss()
        for p in self.procs.values():
            p.stop()
        for log in self._logs:
            log.close()


class OffsetSampler:
    """I2: samples the scorer's stored offsets while the scenario runs and records any that moved back."""

    def __init__(self, box: FaultSandbox) -> None:
        self._box = box
        self.last: dict[int, int] = {}
        self.backwards: list[str] = []
        self.samples = 0

    async def sample(self) -> None:
        s = self._box.settings
        try:
            now = await stored_offsets(self._box.engine, scorer_group(s), s.topics.events)
        except Exception:  # PostgreSQL down: nothing to sample
            return
        self.samples += 1
        for part, off in now.items():
            if off < self.last.get(part, 0):
                self.backwards.append(f"partition {part}: {self.last[part]} -> {off}")
            self.last[part] = max(off, self.last.get(part, 0))

    async def run(self, stop: asyncio.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
