"""A backfill pages no one; a shadow alerter sends nothing: through the real alerter, Kafka and PostgreSQL.

Sixty days of historic risk signals (escalations, recoveries, a critical that holds back warnings, a big
account's escalation route, a tech-touch digest, filler accounts) go through the whole alert logic: alerts
and outbox rows with their destinations are recorded as ``historic``, and neither the Slack-contract server
nor the SMTP server receives anything, also after the reminder scheduler has ticked with a one-second reminder
interval and an expired snooze. Then one recent signal is delivered, and only it. A shadow alerter records
recent signals' notices, reminders, digests and releases as ``shadow`` and sends none of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.demo.processes import ServiceProcess, running
from shared.signals import RiskSignal
from tests.integration.conftest import Sandbox
from tests.support.alerter import (
    TOKEN,
    alert_detail,
    alerter_env,
    api,
    delivery_counts,
    metric,
    processed,
    risk_signal,
    scalar,
)
from tests.support.polling import await_until
from tests.support.slack_server import SlackWebhookServer
from tests.support.smtp_server import SmtpServer, free_port

pytestmark = pytest.mark.integration

TECH = {"touch_tier": "tech", "csm": {"email": "pool@csm.example.com"}}
FILLER_TYPES = ("band_change", "score_drop", "inactivity")
CLOCK = {
    "CHURNWATCH_REPEAT_INTERVAL_SECONDS": "1",  # reminders would be due every second...
    "CHURNWATCH_DIGEST_INTERVAL_SECONDS": "1",  # ...and digests too
    "CHURNWATCH_DIGEST_OFFSET_SECONDS": "0",
}


def history(start: datetime) -> list[RiskSignal]:
    """About 60 days of signals, all with an occurred_at far older than the two-day notify max age."""

    def on(day: int, account_id: str, kind: str, severity: str = "warning", **kw: Any) -> RiskSignal:
        tag = "recovered" if kw.get("recovered") else severity
        occurred = (start + timedelta(days=day)).isoformat()
        sid = f"{kind}:{account_id}:{day}:{tag}"
        return risk_signal(account_id, signal_id=sid, signal_type=kind, severity=severity, occurred_at=occurred, **kw)

    scripted = [
        on(0, "acct-bf-esc", "usage_drop"),
        on(5, "acct-bf-esc", "usage_drop", "critical"),  # escalation
        on(12, "acct-bf-esc", "usage_drop", "info", recovered=True),
        on(30, "acct-bf-esc", "usage_drop"),  # reopens
        on(31, "acct-bf-esc", "usage_drop"),  # already open: dropped
        on(40, "acct-bf-esc", "usage_drop", "critical"),
        on(2, "acct-bf-inh", "usage_drop", "critical"),  # holds back the account's warnings
        on(3, "acct-bf-inh", "inactivity"),
        on(4, "acct-bf-inh", "ticket_spike", audience="support"),
        on(10, "acct-bf-inh", "usage_drop", "info", recovered=True),  # releases them, as historic rows
        on(20, "acct-bf-inh", "score_drop"),
        on(1, "acct-bf-big", "usage_drop", "critical", account={"arr": 250_000}),  # + the escalation route
        on(15, "acct-bf-big", "usage_drop", "info", recovered=True, account={"arr": 250_000}),
        on(3, "acct-bf-tech", "usage_drop", account=TECH),  # digest items
        on(6, "acct-bf-tech", "inactivity", account=TECH),
    ]
    filler = [
        on(day, f"acct-bf-fill-{n}", FILLER_TYPES[(day + n) % 3], "critical" if day % 5 == 0 else "warning")
        if day % 7 != 6
        else on(day, f"acct-bf-fill-{n}", FILLER_TYPES[(day + n) % 3], "info", recovered=True)
        for n in range(4)
        for day in range(60)
    ]
    return sorted(scripted + filler, key=lambda s: s.occurred_at)


async def test_a_backfill_pages_no_one_and_live_traffic_after_it_alerts(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    signals = history(datetime.now(UTC) - timedelta(days=70))
    with running({"alerter": port}, alerter_env(sandbox, slack, smtp, port, **CLOCK)):
        await produce(*signals)
        await await_until(lambda: processed(sandbox, len(signals)), within=120, what="every signal processed")
        assert _nothing_received(slack, smtp)
        counts = await delivery_counts(sandbox)
        assert set(counts) == {"historic"} and counts["historic"] > 100, counts
        listed = (await api("GET", f"{base}/v1/deliveries", params={"status": "historic", "limit": 1000})).json()
        assert len(listed["deliveries"]) == counts["historic"]
        assert all(d["channel"] in ("slack", "email") and d["target"] for d in listed["deliveries"])
        alerts = (await api("GET", f"{base}/v1/alerts", params={"limit": 1000})).json()["alerts"]
        assert alerts and all(a["historic"] and a["notice_mode"] == "historic" for a in alerts)
        assert all(a["last_notified_at"] is None for a in alerts)  # nobody has been told anything

        esc = await alert_detail(base, "acct-bf-esc", "usage_drop")
        assert (esc["state"], esc["severity"]) == ("open", "critical")
        notices = [(d["notice"], d["channel"], d["target"], d["status"]) for d in esc["deliveries"]]
        expected = ["new", "escalated", "resolved", "new", "escalated"]
        csm = (slack.url_for("csm"), "ana@csm.example.com")
        routed = [("slack", csm[0]), ("email", csm[1])]
        assert notices == [(n, c, t, "historic") for n in expected for c, t in routed]
        for kind in ("inactivity", "ticket_spike"):  # held by the critical, released as historic rows
            held = await alert_detail(base, "acct-bf-inh", kind)
            assert (held["inhibited_by"], held["held_notice"]) == (None, None)
            assert [(d["notice"], d["status"]) for d in held["deliveries"]] == [("new", "historic")] * 2
        big = await alert_detail(base, "acct-bf-big", "usage_drop")
        assert {d["target"] for d in big["deliveries"]} == {slack.url_for("default"), *csm}  # escalation route
        assert await metric(base, 'churnwatch_alerter_notices_total{mode="historic"}') >= 40

        # The reminder scheduler runs: an expired snooze, due reminders and due digests must page no one either.
        ticks = await metric(base, "churnwatch_alerter_clock_ticks_total")
        score_drop = await alert_detail(base, "acct-bf-inh", "score_drop")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        snoozed = await api("POST", f"{base}/v1/alerts/{score_drop['id']}/snooze", headers=auth, json={"minutes": 0.02})
        assert snoozed.status_code == 200 and snoozed.json()["state"] == "snoozed"

        async def clock_has_run() -> bool:
            reopened = (await alert_detail(base, "acct-bf-inh", "score_drop"))["state"] == "open"
            digested = await scalar(sandbox, "SELECT count(*) FROM deliveries WHERE notice = 'digest'")
            ran = await metric(base, "churnwatch_alerter_clock_ticks_total") >= ticks + 8  # >= 4 s, 4 intervals
            return reopened and digested >= 1 and ran

        await await_until(clock_has_run, within=60, what="the snooze expired, a digest recorded, 8 clock ticks")
        assert _nothing_received(slack, smtp)
        assert set(await delivery_counts(sandbox)) == {"historic"}
        assert await scalar(sandbox, "SELECT count(*) FROM deliveries WHERE notice = 'reminder'") == 0
        assert await scalar(sandbox, "SELECT count(*) FROM digest_items WHERE delivery_id IS NULL") == 0

        # Live traffic after the backfill: the open historic alert was seen by no one, so this is news.
        await produce(risk_signal("acct-bf-esc", signal_id="usage_drop:acct-bf-esc:recent"))
        await await_until(lambda: _told(slack, smtp), within=60, what="the recent signal delivered")
        live = await alert_detail(base, "acct-bf-esc", "usage_drop")
        assert (live["historic"], live["notice_mode"], live["severity"]) == (False, "live", "warning")
    said = [m["text"] for m in slack.messages()]
    assert all("(acct-bf-esc)" in t for t in said), said  # reminders of it may follow; nothing else
    assert [t for t in said if "Reminder:" not in t] == [said[0]]
    assert "Warning: usage drop on Account acct-bf-esc" in said[0], said
    assert next(r.path for r in slack.requests()).endswith("/csm")
    mails = smtp.messages()
    assert {m["To"] for m in mails} == {"ana@csm.example.com"}
    assert len([m for m in mails if "Reminder" not in m["Subject"]]) == 1, [m["Subject"] for m in mails]


async def test_shadow_mode_records_every_notice_and_sends_none(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = alerter_env(sandbox, slack, smtp, port, CHURNWATCH_DELIVERY_MODE="shadow", **CLOCK)
    with tempfile.TemporaryFile("w+") as log, running({"alerter": port}, env, stdout=log):
        await produce(
            risk_signal("acct-sh-csm"),
            risk_signal("acct-sh-tech", account=TECH),
            risk_signal("acct-sh-inh", signal_id="usage_drop:acct-sh-inh", severity="critical"),
            risk_signal("acct-sh-inh", signal_id="inactivity:acct-sh-inh", signal_type="inactivity"),
        )
        await await_until(lambda: processed(sandbox, 4), within=60, what="the signals processed")
        await produce(risk_signal("acct-sh-inh", signal_id="usage_drop:back", recovered=True, severity="info"))

        async def recorded() -> bool:
            rows = await scalar(
                sandbox,
                "SELECT count(DISTINCT notice) FROM deliveries WHERE status = 'shadow'"
                " AND notice IN ('new', 'reminder', 'digest', 'resolved')",
            )
            return rows == 4

        await await_until(recorded, within=60, what="shadow new, reminder, digest and resolved rows")
        assert _nothing_received(slack, smtp)
        assert set(await delivery_counts(sandbox)) == {"shadow"}
        released = await alert_detail(base, "acct-sh-inh", "inactivity")
        assert [(d["notice"], d["status"]) for d in released["deliveries"][:2]] == [("new", "shadow")] * 2
        assert {d["status"] for d in released["deliveries"]} == {"shadow"}  # and its shadow reminders
        alerts = (await api("GET", f"{base}/v1/alerts")).json()["alerts"]
        assert {(a["notice_mode"], a["historic"]) for a in alerts} == {("shadow", False)}
        listed = (await api("GET", f"{base}/v1/deliveries", params={"status": "shadow", "limit": 1000})).json()
        assert {d["target"] for d in listed["deliveries"]} >= {slack.url_for("csm"), "pool@csm.example.com"}
        assert await metric(base, 'churnwatch_alerter_notices_total{mode="shadow"}') >= 4
        assert _nothing_received(slack, smtp)
        log.seek(0)
        assert "delivery mode shadow" in log.read()


def test_a_bad_delivery_mode_refuses_start_up_naming_the_variable(sandbox: Sandbox) -> None:
    env = {**sandbox.env, "CHURNWATCH_DELIVERY_MODE": "quiet"}
    code, out = ServiceProcess("alerter", env, free_port()).refused_start()
    assert code != 0 and "CHURNWATCH_DELIVERY_MODE" in out, out[-2000:]


def _nothing_received(slack: SlackWebhookServer, smtp: SmtpServer) -> bool:
    return slack.attempts == 0 and smtp.messages() == []


async def _told(slack: SlackWebhookServer, smtp: SmtpServer) -> bool:
    return bool(slack.messages("csm")) and bool(smtp.messages())
