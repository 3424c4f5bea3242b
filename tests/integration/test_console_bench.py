"""bench/console.py still runs end to end (tiny sizes, real stack): a bench that rots reports nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.demo.processes import REPO_ROOT

pytestmark = pytest.mark.integration


def test_bench_console_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.console", "--accounts", "300", "--requests", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "list, first page (sort band):" in done.stdout and "first page p95" in done.stdout
    assert "portfolio:" in done.stdout
