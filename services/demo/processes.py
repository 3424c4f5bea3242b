"""Running the services as real OS processes: used by the demo and by the integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_PORTS = {"ingest": 8000, "scorer": 8001, "alerter": 8002, "console": 8003}  # console last: it reads the others


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    def __init__(self, name: str, env: Mapping[str, str], port: int, *, stdout: IO[str] | int | None = None) -> None:
        self.name = name
        self.port = port
        self._env = {**os.environ, **env, "CHURNWATCH_HTTP_PORT": str(port)}
        self._stdout = stdout
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", self.name],
            env=self._env,
            cwd=REPO_ROOT,
            stdout=self._stdout,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_running()
            try:
                resp = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if resp.status_code == 200:
                    return
                last = resp.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout}s: {last}")

    def check_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def refused_start(self, timeout: float = 60.0) -> tuple[int, str]:
        """Starts a process that should refuse to run (a bad config file); returns its exit code and output."""
        self._stdout = subprocess.PIPE
        proc = self.start().proc
        assert proc is not None
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flush; what a crash looks like."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def running(
    ports: Mapping[str, int], env: Mapping[str, str], *, ready_within: float = 60.0, stdout: IO[str] | int | None = None
) -> Iterator[dict[str, ServiceProcess]]:
    """Starts the named services (name -> port), waits until each is ready, and stops them all on exit."""
    procs = {name: ServiceProcess(name, env, port, stdout=stdout) for name, port in ports.items()}
    try:
        for p in procs.values():
            p.start()
        for p in procs.values():
            p.wait_ready(timeout=ready_within)
        yield procs
    finally:
        for p in procs.values():
            p.stop()
