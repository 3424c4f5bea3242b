"""A backfill of simulated history through the real services, as a new user would load theirs.

``churnwatch backfill`` loads 70 days of history (ending eight days ago) into a sandbox while the real scorer and
alerter run with the Slack-contract server and SMTP: the scorer's signals are all historic, the alerter records
every alert it would have sent and no message arrives. ``churnwatch backtest`` then measures the rules against
the simulator's churn dates. Live traffic afterwards closes the days since the history ended: the signals of
those recent days are delivered, and only they.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from services.demo.backtest_run import wait_until_scored
from services.demo.history import write_history
from services.demo.processes import REPO_ROOT, running
from shared.consumer_progress import end_offsets, stored_offsets
from shared.events import EVENT_ADAPTER, encode_event
from tests.integration.conftest import Sandbox
from tests.support.alerter import alerter_env, delivery_counts, scalar
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

HISTORY_DAYS = 70
ENDS_DAYS_AGO = 8  # the history's last day: every signal of it is older than the two-day notify max age


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


async def _alerter_done(sandbox: Sandbox) -> bool:
    s = sandbox.settings
    ends = await end_offsets(s, s.topics.signals)
    stored = await stored_offsets(sandbox.engine, f"{s.topic_prefix}.alerter", s.topics.signals)
    return sum(ends.values()) > 0 and all(stored.get(p, 0) >= off for p, off in ends.items())


async def _live_event(sandbox: Sandbox, account_id: str) -> None:
    event = EVENT_ADAPTER.validate_python(
        {"kind": "usage", "action": "login", "event_id": "live-1", "account_id": account_id}
        | {"occurred_at": datetime.now(UTC).isoformat(), "user_id": "u-live"}
    )
    producer = AIOKafkaProducer(bootstrap_servers=sandbox.settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(sandbox.settings.topics.events, encode_event(event), key=account_id.encode())
    finally:
        await producer.stop()


async def test_backfill_scores_history_pages_no_one_and_backtests(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, tmp_path: Path
) -> None:
    start = (datetime.now(UTC) - timedelta(days=HISTORY_DAYS + ENDS_DAYS_AGO - 1)).date()
    manifest = write_history(tmp_path, accounts=40, days=HISTORY_DAYS, start=start, seed=5)
    events, profiles = tmp_path / "events.jsonl.gz", tmp_path / "accounts.jsonl"
    alerter_port = free_port()
    env = alerter_env(sandbox, slack, smtp, alerter_port)
    with running({"scorer": free_port(), "alerter": alerter_port}, env):
        loaded = _cli("backfill", str(events), "--accounts", str(profiles), "--sandbox", sandbox.settings.topic_prefix)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        await wait_until_scored(sandbox.settings, within=300, every=0.5)
        await await_until(lambda: _alerter_done(sandbox), within=120, what="the alerter consumed every signal")
        risk = await scalar(sandbox, "SELECT count(*) FROM signal_log WHERE NOT recovered")
        assert risk > 20, "70 days of 40 accounts must raise risk signals"
        assert await scalar(sandbox, "SELECT count(*) FROM alerts") > 10
        counts = await delivery_counts(sandbox)
        assert set(counts) == {"historic"} and counts["historic"] > 10, counts
        assert slack.requests() == [] and smtp.messages() == [], "a backfill must page no one"

        # the backtest, as a user runs it, against the simulator's churn dates
        outcomes = str(tmp_path / "outcomes.csv")
        report = _cli("backtest", "--sandbox", sandbox.settings.topic_prefix, "--outcomes", outcomes, "--json", "-")
        assert report.returncode == 0, report.stderr
        body = json.loads(report.stdout)
        assert body["accounts"] == manifest.accounts
        assert body["churners"] == manifest.churners
        overall = body["rules"][0]
        assert overall["alerts"] == await scalar(
            sandbox, "SELECT count(*) FROM signal_log WHERE NOT recovered AND signal_type <> 'expansion'"
        )

        # live traffic resumes: the days since the history ended close, and their recent signals are delivered
        await _live_event(sandbox, await _an_account(sandbox))
        await await_until(lambda: _delivered(sandbox), within=120, what="a recent signal delivered")
        await await_until(lambda: _sent_or_failed_all(sandbox), within=120, what="the recent notices all sent")
    cutoff = datetime.now(UTC) - timedelta(days=2, minutes=5)
    async with sandbox.engine.connect() as conn:
        sent_causes = (
            await conn.execute(
                text(
                    "SELECT DISTINCT l.occurred_at FROM deliveries d JOIN signal_log l ON l.signal_id = d.cause"
                    " WHERE d.status = 'sent'"
                )
            )
        ).scalars()
        assert all(at > cutoff for at in sent_causes), "only signals of recent days may be delivered"
    assert slack.requests() or smtp.messages()


async def _an_account(sandbox: Sandbox) -> str:
    async with sandbox.engine.connect() as conn:
        return str((await conn.execute(text("SELECT min(account_id) FROM account_health"))).scalar())


async def _delivered(sandbox: Sandbox) -> bool:
    return (await delivery_counts(sandbox)).get("sent", 0) > 0


async def _sent_or_failed_all(sandbox: Sandbox) -> bool:
    return (await delivery_counts(sandbox)).get("pending", 0) == 0
