"""The end-to-end delay metrics of a real alerter: a delivered notice records how long after its signal's event
time, and after the alerter received the signal, it was sent (its /metrics, as Prometheus scrapes it).
Reminders are sent late on purpose and are not counted; an event time in the future gives no event delay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Sandbox
from tests.support.alerter import alerter_env, risk_signal, running_alerter, scalar
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

EVENT_TO_DELIVERY = "churnwatch_alerter_event_to_delivery_seconds"
SIGNAL_TO_DELIVERY = "churnwatch_alerter_signal_to_delivery_seconds"
HOUR = 3600.0


@dataclass(frozen=True)
class Observed:
    """One histogram's samples for one channel."""

    count: float
    total: float
    buckets: dict[float, float]  # upper bound -> cumulative count


async def observed(base: str, histogram: str, channel: str) -> Observed:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{base}/metrics", timeout=10)).text
    samples = [
        s
        for family in text_string_to_metric_families(body)
        if family.name == histogram
        for s in family.samples
        if s.labels.get("channel") == channel
    ]
    value = {s.name: s.value for s in samples if "le" not in s.labels}
    buckets = {float(s.labels["le"]): s.value for s in samples if "le" in s.labels}
    return Observed(value.get(f"{histogram}_count", 0.0), value.get(f"{histogram}_sum", 0.0), buckets)


async def channels_sent(sandbox: Sandbox, causes: str) -> int:
    """How many channels have sent a row whose cause is LIKE ``causes``."""
    sql = f"SELECT count(DISTINCT channel) FROM deliveries WHERE status = 'sent' AND cause LIKE '{causes}'"
    return await scalar(sandbox, sql)


async def sent_rows(sandbox: Sandbox, *causes: str) -> int:
    quoted = ", ".join(f"'{c}'" for c in causes)
    return await scalar(sandbox, f"SELECT count(*) FROM deliveries WHERE status = 'sent' AND cause IN ({quoted})")


async def declared(base: str, histogram: str) -> bool:
    async with httpx.AsyncClient() as client:
        return f"# TYPE {histogram} histogram" in (await client.get(f"{base}/metrics", timeout=10)).text


async def test_a_delivered_alert_records_its_delay_from_event_time_and_from_receipt(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = alerter_env(sandbox, slack, smtp, port, CHURNWATCH_REPEAT_INTERVAL_SECONDS="1")
    produced_at = datetime.now(UTC)
    an_hour_ago = risk_signal("acct-delay-past", occurred_at=(produced_at - timedelta(seconds=HOUR)).isoformat())
    ahead = risk_signal(  # a producer whose clock runs 10 minutes ahead
        "acct-delay-ahead", signal_id="usage_drop:ahead", occurred_at=(produced_at + timedelta(minutes=10)).isoformat()
    )
    with running_alerter(env, port):
        # declared before anything is sent, so the dashboard's and the rules' names exist from the start
        assert await declared(base, EVENT_TO_DELIVERY) and await declared(base, SIGNAL_TO_DELIVERY)
        await produce(an_hour_ago, ahead)
        causes = (an_hour_ago.signal_id, ahead.signal_id)
        await await_until(lambda: _ge(sent_rows(sandbox, *causes), 4), within=60, what="both sent by Slack and email")
        await await_until(
            lambda: _ge(channels_sent(sandbox, "reminder:%"), 2), within=60, what="reminders sent on both channels"
        )
        finished_by = datetime.now(UTC)
        for channel in ("slack", "email"):
            since_event = await observed(base, EVENT_TO_DELIVERY, channel)
            assert since_event.count == 1, f"{channel}: only the signal of an hour ago has an event delay"
            assert HOUR <= since_event.total <= HOUR + (finished_by - produced_at).total_seconds()
            assert since_event.buckets[1800.0] == 0 and since_event.buckets[7200.0] == 1
            since_receipt = await observed(base, SIGNAL_TO_DELIVERY, channel)
            assert since_receipt.count == 2, f"{channel}: both signals, and no reminder, have a receipt delay"
            assert 0 < since_receipt.total <= 2 * (finished_by - produced_at).total_seconds()


async def _ge(value: Awaitable[int], n: int) -> bool:
    return await value >= n
