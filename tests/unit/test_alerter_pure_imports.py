"""The alerter's rules are pure: importing them (as their unit tests do) pulls in no database, HTTP or SMTP
client. Checked in a fresh interpreter, so what other tests imported does not count."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = [
    "services.alerter.core",
    "services.alerter.changes",
    "services.alerter.lifecycle",
    "services.alerter.notice_mode",
    "services.alerter.routing",
    "services.alerter.routing_config",
    "services.alerter.grouping",
    "services.alerter.group_messages",
    "services.alerter.messages",
    "services.alerter.links",
    "services.alerter.outgoing",
    "services.alerter.pacing",
    "services.alerter.delivery_delay",
    "services.alerter.compose",
]
IO_CLIENTS = ("sqlalchemy", "httpx", "aiosmtplib", "aiokafka", "asyncpg")


def test_pure_modules_import_no_io_client() -> None:
    probe = (
        "import importlib, json, sys\n"
        f"for m in {PURE!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({IO_CLIENTS!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [], f"pure modules pulled in {out.stdout.strip()}"


def test_the_probe_would_see_an_io_import() -> None:
    """The check can fail: the writer (store.py) does import sqlalchemy."""
    probe = "import services.alerter.store, sys; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
