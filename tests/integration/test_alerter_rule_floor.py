"""Rules that did not earn their place page no one: through the real alerter, Kafka, PostgreSQL, Slack and SMTP.

Recent signals of rules whose backtested lift is below CHURNWATCH_MIN_RULE_LIFT (3.0) go through the whole
alert logic and are recorded as ``quiet`` with their routed destinations: nothing reaches the Slack-contract
or SMTP server, also after the reminder scheduler has ticked with one-second reminder and digest intervals. A rule
that earned its place is delivered, with its track record in the message; so is the same type at a
severity that earned its place on an account whose quiet alert nobody heard of.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from services.demo.processes import ServiceProcess, running
from shared.signals import RiskSignal
from tests.integration.conftest import Sandbox
from tests.support.alerter import (
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
CLOCK = {
    "CHURNWATCH_REPEAT_INTERVAL_SECONDS": "1",  # reminders would be due every second...
    "CHURNWATCH_DIGEST_INTERVAL_SECONDS": "1",  # ...and digests too
    "CHURNWATCH_DIGEST_OFFSET_SECONDS": "0",
}
EARNED_LINE = "This rule was right 14% of the time in backtests (6.8x chance)"


def rated(account_id: str, kind: str, lift: float, precision: float, **kw: Any) -> RiskSignal:
    quality = {"precision": precision, "lift": lift, "judged_alerts": 300, "source": "sim seed 11, H=60 days"}
    severity = kw.pop("severity", "warning")
    sid = kw.pop("signal_id", f"{kind}:{account_id}:{severity}")
    return risk_signal(account_id, signal_id=sid, signal_type=kind, severity=severity, quality=quality, **kw)


def weak_signals() -> list[RiskSignal]:
    return [
        rated("acct-rf-usage", "usage_drop", 1.1, 0.02),
        rated("acct-rf-nps", "detractor", 1.0, 0.018),
        rated("acct-rf-tech", "score_drop", 1.6, 0.03, account=TECH),  # a digest route
        rated("acct-rf-inh", "usage_drop", 1.1, 0.02, severity="critical"),  # quiet critical...
        rated("acct-rf-inh", "score_drop", 1.6, 0.03),  # ...holds back its quiet warning
    ]


async def test_low_lift_rules_are_recorded_quiet_and_rules_that_earned_it_are_delivered(
    sandbox: Sandbox, slack: SlackWebhookServer, smtp: SmtpServer, produce: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    weak = weak_signals()
    with running({"alerter": port}, alerter_env(sandbox, slack, smtp, port, **CLOCK)):
        await produce(*weak)
        await await_until(lambda: processed(sandbox, len(weak)), within=60, what="the weak signals processed")
        ticks = await metric(base, "churnwatch_alerter_clock_ticks_total")

        async def clock_has_run() -> bool:
            digested = await scalar(sandbox, "SELECT count(*) FROM deliveries WHERE notice = 'digest'")
            return digested >= 1 and await metric(base, "churnwatch_alerter_clock_ticks_total") >= ticks + 8

        await await_until(clock_has_run, within=60, what="a digest recorded and 8 clock ticks (>= 4 s)")
        assert _nothing_received(slack, smtp)
        assert set(await delivery_counts(sandbox)) == {"quiet"}
        assert await scalar(sandbox, "SELECT count(*) FROM deliveries WHERE notice = 'reminder'") == 0

        usage = await alert_detail(base, "acct-rf-usage", "usage_drop")
        assert (usage["state"], usage["quiet"], usage["notice_mode"]) == ("open", True, "quiet")
        assert usage["quality"]["lift"] == 1.1 and usage["last_notified_at"] is None
        routed = {(d["notice"], d["channel"], d["target"], d["status"]) for d in usage["deliveries"]}
        assert routed == {
            ("new", "slack", slack.url_for("csm"), "quiet"),
            ("new", "email", "ana@csm.example.com", "quiet"),
        }
        listed = (await api("GET", f"{base}/v1/deliveries", params={"status": "quiet", "limit": 1000})).json()
        targets = {d["target"] for d in listed["deliveries"]}
        assert targets == {slack.url_for("csm"), "ana@csm.example.com", "pool@csm.example.com"}, targets
        alerts = (await api("GET", f"{base}/v1/alerts", params={"limit": 1000})).json()["alerts"]
        assert len(alerts) == 5 and all(a["quiet"] and a["quality"]["lift"] < 2 for a in alerts), alerts
        held = await alert_detail(base, "acct-rf-inh", "score_drop")
        assert held["inhibited_by"] == (await alert_detail(base, "acct-rf-inh", "usage_drop"))["id"]
        assert await metric(base, 'churnwatch_alerter_notices_total{mode="quiet"}') >= 4

        # A rule that earned its place, on another account: delivered, with its track record.
        await produce(rated("acct-rf-good", "band_change", 6.8, 0.14, severity="critical"))
        await await_until(lambda: _told(slack, smtp, "acct-rf-good"), within=60, what="the earned signal delivered")
        assert _nothing_about(slack, smtp, "acct-rf-usage")

        # The same type at a severity that earned its place: nobody heard of the quiet warning, so it is news.
        await produce(rated("acct-rf-usage", "usage_drop", 6.8, 0.14, severity="critical"))
        await await_until(lambda: _told(slack, smtp, "acct-rf-usage"), within=60, what="the critical delivered")
        usage = await alert_detail(base, "acct-rf-usage", "usage_drop")
        assert (usage["severity"], usage["quiet"], usage["notice_mode"]) == ("critical", False, "live")
        assert [d["notice"] for d in usage["deliveries"] if d["status"] != "quiet"][:2] == ["new", "new"]

    firsts = [m for m in slack.messages() if "Reminder:" not in m["text"]]
    assert [_account(m["text"]) for m in firsts] == ["acct-rf-good", "acct-rf-usage"], firsts
    for message in firsts:
        sections = " ".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")
        assert EARNED_LINE in sections, message
    assert "Critical: usage drop on Account acct-rf-usage" in firsts[1]["text"]
    mails = [m for m in smtp.messages() if "Reminder" not in m["Subject"]]
    assert len(mails) == 2 and all(EARNED_LINE in _body(m) for m in mails), [m["Subject"] for m in mails]
    assert not any(
        acct in m["text"] for m in slack.messages() for acct in ("acct-rf-nps", "acct-rf-tech", "acct-rf-inh")
    )


def test_a_bad_lift_floor_refuses_start_up_naming_the_variable(sandbox: Sandbox) -> None:
    env = {**sandbox.env, "CHURNWATCH_MIN_RULE_LIFT": "-1"}
    code, out = ServiceProcess("alerter", env, free_port()).refused_start()
    assert code != 0 and "CHURNWATCH_MIN_RULE_LIFT" in out, out[-2000:]


def _nothing_received(slack: SlackWebhookServer, smtp: SmtpServer) -> bool:
    return slack.attempts == 0 and smtp.messages() == []


def _nothing_about(slack: SlackWebhookServer, smtp: SmtpServer, account_id: str) -> bool:
    said = [m["text"] for m in slack.messages()] + [str(m["Subject"]) for m in smtp.messages()]
    return not any(f"({account_id})" in s for s in said)


async def _told(slack: SlackWebhookServer, smtp: SmtpServer, account_id: str) -> bool:
    """Its first notice reached both Slack and email."""
    on_slack = any(f"({account_id})" in m["text"] and "Reminder:" not in m["text"] for m in slack.messages())
    return on_slack and any(f"({account_id})" in str(m["Subject"]) for m in smtp.messages())


def _account(text: str) -> str:
    found = re.search(r"\((acct-[\w-]+)\)", text)
    return found.group(1) if found else ""


def _body(mail: Any) -> str:
    return "\n".join(part.get_content() for part in mail.walk() if part.get_content_type() == "text/plain")
