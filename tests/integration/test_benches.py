"""The benchmarks still run end to end (tiny sizes, real stack): a bench that rots reports nothing."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from services.demo.processes import REPO_ROOT

pytestmark = pytest.mark.integration


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def figure(out: str, label: str) -> float:
    match = re.search(rf"^{re.escape(label)}\s+([\d.]+)", out, re.MULTILINE)
    assert match, f"no {label!r} line in:\n{out}"
    return float(match.group(1))


def test_bench_scorer_prints_its_figures() -> None:
    sizes = ["--events", "3000", "--accounts", "30", "--instances", "2", "--restart-accounts", "50"]
    out = run_bench("bench.scorer", *sizes)
    for label in ("raw aiokafka consumer:", "scorer end to end:", "in-memory ceiling:", "2 scorer processes:"):
        assert figure(out, label) > 0
    assert figure(out, "ratio scorer/raw:") <= figure(out, "ratio ceiling/raw:")
    assert "restart with 50 accounts: /readyz 200 after" in out


def test_bench_ingest_prints_its_ratio() -> None:
    out = run_bench("bench.ingest", "--events", "2000", "--batch", "200", "--rounds", "1")
    assert "ratio" in out, out


def test_bench_backfill_prints_both_rates_the_ratio_and_the_scorer_catch_up() -> None:
    out = run_bench("bench.backfill", "--events", "3000")
    for label in ("raw aiokafka producer:", "backfill end to end:", "scorer catch-up:"):
        assert figure(out, label) > 0
    assert figure(out, "ratio backfill/raw:") > 0
    assert "done: 3000 events sent" in out


def test_bench_ceiling_of_compares_an_earlier_commit_with_the_working_tree() -> None:
    out = run_bench("bench.ceiling_of", "476f3f5", "--events", "2000", "--accounts", "20", "--rounds", "1")
    for label in ("476f3f5:", "working tree:", "ratio:"):
        assert figure(out, label) > 0
