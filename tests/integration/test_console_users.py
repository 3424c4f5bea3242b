"""``churnwatch console-user add|list|disable`` in a sandbox schema, and what a stored hash looks like."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from services.console.users import authenticate
from services.demo.processes import REPO_ROOT
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration


def console_user(sandbox: Sandbox, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "console-user", *args],
        input=stdin,
        env={**sandbox.env, "PATH": "/usr/bin:/bin"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_users_are_added_from_stdin_or_a_file_listed_and_disabled(sandbox: Sandbox, tmp_path: Path) -> None:
    added = console_user(sandbox, "add", "Ana@CSM.example.com", "--name", "Ana", stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "ana@csm.example.com (Ana) can sign in" in added.stdout
    secret = tmp_path / "pw"
    secret.write_text("another long password\n")
    assert (
        console_user(sandbox, "add", "bo@csm.example.com", "--name", "Bo", "--password-file", str(secret)).returncode
        == 0
    )
    weak = console_user(sandbox, "add", "cy@csm.example.com", "--name", "Cy", stdin="short\n")
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr

    async with sandbox.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT password_hash FROM console_users ORDER BY email"))).scalars().all()
    assert len(stored) == 2 and all(h.startswith("scrypt$32768$8$1$") for h in stored)
    assert not any("password" in h for h in stored)
    assert await authenticate(sandbox.engine, "ANA@csm.example.com", "a long enough password") is not None
    assert await authenticate(sandbox.engine, "ana@csm.example.com", "a long enough passworD") is None

    listing = console_user(sandbox, "list").stdout
    assert "ana@csm.example.com" in listing and "bo@csm.example.com" in listing and "active" in listing
    assert console_user(sandbox, "disable", "bo@csm.example.com").returncode == 0
    assert console_user(sandbox, "disable", "bo@csm.example.com").returncode == 1
    assert "disabled" in console_user(sandbox, "list").stdout
    assert await authenticate(sandbox.engine, "bo@csm.example.com", "another long password") is None
