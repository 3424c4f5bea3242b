"""Browser tests: Debian's Chromium driven by Playwright (async API) against real service processes.

Chromium comes from deploy/chromium.sh (Debian's package; no browser download). If it is missing or cannot
start, every browser test fails saying so: no skip. Screenshots go to ``$CHURNWATCH_TEST_OUTPUT/<test>/`` when
that is set, else to the test's ``tmp_path`` (pytest keeps the last three runs under its basetemp).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from services.demo.processes import REPO_ROOT
from tests.integration.conftest import local_stack, produce, sandbox, slack, smtp  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy" / "chromium.sh")], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"deploy/chromium.sh could not provide Chromium ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        except Exception as exc:
            pytest.fail(f"Chromium at {chromium_path} did not start: {exc}")
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    base = os.environ.get("CHURNWATCH_TEST_OUTPUT")
    folder = Path(base) / request.node.name if base else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
