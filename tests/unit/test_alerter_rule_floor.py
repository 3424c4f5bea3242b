"""The rule lift floor: a signal whose rule's backtested lift is below CHURNWATCH_MIN_RULE_LIFT is quiet
(recorded with its routing, never sent), and messages carry the rule's track record. Pure, no database."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.alerter.core import alert_columns
from services.alerter.lifecycle import (
    AlertState,
    Decision,
    ExistingAlert,
    InhibitPolicy,
    Notice,
    SiblingAlert,
    decide,
    inhibitor_of,
    on_timer,
    release,
)
from services.alerter.messages import AlertNotice, digest_email, email_message, slack_message, track_record_line
from services.alerter.notice_mode import DeliveryMode, DeliveryPolicy, NoticeMode, quietest
from services.alerter.settings import AlerterSettings
from shared.signals import RiskSignal, RuleQuality, Severity
from tests.unit.test_alerting import T0, signal

LIVE, QUIET, HISTORIC, SHADOW = NoticeMode.LIVE, NoticeMode.QUIET, NoticeMode.HISTORIC, NoticeMode.SHADOW
OPEN, ACKED, SNOOZED, RESOLVED = AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED, AlertState.RESOLVED
WARNING, CRITICAL, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO
NOW = T0 + timedelta(days=100)
RECENT = NOW - timedelta(hours=1)
OLD = NOW - timedelta(days=30)


def quality(lift: float | None, precision: float | None = 0.05) -> RuleQuality:
    return RuleQuality(precision=precision, lift=lift, judged_alerts=120, source="sim seed 11, 60 days")


@pytest.mark.parametrize(
    ("lift", "floor", "delivery", "occurred_at", "expected"),
    [
        (1.1, 2.0, DeliveryMode.LIVE, RECENT, QUIET),  # usage_drop/warning: barely better than chance
        (1.999, 2.0, DeliveryMode.LIVE, RECENT, QUIET),
        (2.0, 2.0, DeliveryMode.LIVE, RECENT, LIVE),  # at the floor: earned its place
        (6.8, 2.0, DeliveryMode.LIVE, RECENT, LIVE),
        (0.0, 2.0, DeliveryMode.LIVE, RECENT, QUIET),  # never right at all
        (None, 2.0, DeliveryMode.LIVE, RECENT, LIVE),  # lift unknown (no judged alerts): routed as today
        (math.nan, 2.0, DeliveryMode.LIVE, RECENT, LIVE),  # not a number: unknown
        (1.1, 0.0, DeliveryMode.LIVE, RECENT, LIVE),  # floor 0: off
        (1.1, 1.0, DeliveryMode.LIVE, RECENT, LIVE),  # a lower floor
        (0.9, 1.0, DeliveryMode.LIVE, RECENT, QUIET),
        (5.0, 8.0, DeliveryMode.LIVE, RECENT, QUIET),  # a stricter one
        (1.1, 2.0, DeliveryMode.LIVE, OLD, HISTORIC),  # historic still wins: it pages no one either way
        (6.8, 2.0, DeliveryMode.LIVE, OLD, HISTORIC),
        (1.1, 2.0, DeliveryMode.SHADOW, RECENT, QUIET),  # a live alerter would not have sent it either
        (6.8, 2.0, DeliveryMode.SHADOW, RECENT, SHADOW),
        (1.1, 2.0, DeliveryMode.SHADOW, OLD, HISTORIC),
    ],
)
def test_a_rule_below_the_lift_floor_is_quiet(
    lift: float | None, floor: float, delivery: DeliveryMode, occurred_at: Any, expected: NoticeMode
) -> None:
    policy = DeliveryPolicy(delivery, timedelta(days=2), floor)
    assert policy.for_signal(occurred_at, NOW, quality(lift)) is expected
    assert policy.for_risk_signal(signal(occurred_at=occurred_at, quality=quality(lift)), NOW) is expected


def test_unknown_quality_is_routed_and_a_recovery_ignores_its_own_quality() -> None:
    policy = DeliveryPolicy()
    assert policy.min_rule_lift == 3.0
    assert policy.for_signal(RECENT, NOW) is LIVE and policy.for_signal(RECENT, NOW, None) is LIVE
    assert policy.for_risk_signal(signal(occurred_at=RECENT), NOW) is LIVE
    recovery = signal(occurred_at=RECENT, recovered=True, severity=INFO, quality=quality(0.5))
    assert policy.for_risk_signal(recovery, NOW) is LIVE  # whether it is told follows its alert


def test_quiet_sits_between_shadow_and_historic() -> None:
    assert QUIET.outbox_status == "quiet"  # never "pending": the delivery workers do not take it
    assert quietest(LIVE, QUIET) is QUIET and quietest(SHADOW, QUIET) is QUIET
    assert quietest(QUIET, HISTORIC) is HISTORIC
    assert [m.would_be_sent for m in (LIVE, SHADOW, QUIET, HISTORIC)] == [True, True, False, False]


def alert(
    state: AlertState = OPEN, severity: Severity = WARNING, mode: NoticeMode = QUIET, told: bool = False
) -> ExistingAlert:
    return ExistingAlert(state, severity, T0 if told else None, None, None, mode)


@pytest.mark.parametrize(
    ("existing", "sig", "mode", "expected"),
    [
        (None, signal(), QUIET, (OPEN, WARNING, Notice.NEW, QUIET)),  # the alert logic runs fully
        (alert(), signal(), QUIET, None),  # dedup: already open
        (alert(), signal(severity=CRITICAL), QUIET, (OPEN, CRITICAL, Notice.ESCALATED, QUIET)),
        # The same type at a severity that earned its place: news to everyone, nobody heard of the warning.
        (alert(), signal(severity=CRITICAL), LIVE, (OPEN, CRITICAL, Notice.NEW, LIVE)),
        (alert(), signal(), LIVE, (OPEN, WARNING, Notice.NEW, LIVE)),  # quality unknown now: routed
        (alert(mode=LIVE), signal(), QUIET, None),  # told already: the usual dedup
        # A person was told at warning, a quiet rule escalates: recorded quiet...
        (alert(mode=LIVE, told=True), signal(severity=CRITICAL), QUIET, (OPEN, CRITICAL, Notice.ESCALATED, QUIET)),
        # ...and whoever heard it open hears it close; a routed signal is no "new" to them.
        (
            alert(severity=CRITICAL, told=True),
            signal(recovered=True),
            LIVE,
            (RESOLVED, CRITICAL, Notice.RESOLVED, LIVE),
        ),
        (alert(severity=CRITICAL, told=True), signal(severity=CRITICAL), LIVE, None),
        # A quiet alert nobody heard of resolves quietly; a routed alert's recovery is routed.
        (alert(), signal(recovered=True, severity=INFO), LIVE, (RESOLVED, WARNING, Notice.RESOLVED, QUIET)),
        (alert(mode=LIVE), signal(recovered=True), LIVE, (RESOLVED, WARNING, Notice.RESOLVED, LIVE)),
        (alert(mode=HISTORIC), signal(recovered=True), LIVE, (RESOLVED, WARNING, Notice.RESOLVED, HISTORIC)),
        (alert(RESOLVED, mode=LIVE), signal(), QUIET, (OPEN, WARNING, Notice.NEW, QUIET)),  # reopened by a weak rule
        (alert(ACKED), signal(severity=CRITICAL), LIVE, (ACKED, CRITICAL, Notice.ESCALATED, LIVE)),  # a person saw it
    ],
)
def test_what_a_quiet_signal_does_to_its_alert(
    existing: ExistingAlert | None,
    sig: RiskSignal,
    mode: NoticeMode,
    expected: tuple[AlertState, Severity, Notice, NoticeMode] | None,
) -> None:
    decision = decide(existing, sig, mode)
    assert (None if decision is None else (decision.state, decision.severity, decision.notice, decision.mode)) == (
        expected
    )


LATE = T0 + timedelta(hours=5)


@pytest.mark.parametrize(
    ("existing", "own", "expected"),
    [
        (ExistingAlert(OPEN, WARNING, T0, mode=QUIET), LIVE, None),  # no reminders for a quiet alert
        (ExistingAlert(OPEN, WARNING, T0, mode=QUIET), SHADOW, None),
        (ExistingAlert(SNOOZED, WARNING, None, T0, mode=QUIET), LIVE, (OPEN, None, QUIET)),  # reopens silently
        (ExistingAlert(OPEN, WARNING, T0, mode=LIVE), LIVE, (OPEN, Notice.REMINDER, LIVE)),
    ],
)
def test_timers_never_page_about_a_quiet_alert(
    existing: ExistingAlert, own: NoticeMode, expected: tuple[AlertState, Notice | None, NoticeMode] | None
) -> None:
    decision = on_timer(existing, LATE, timedelta(hours=4), own)
    assert (None if decision is None else (decision.state, decision.notice, decision.mode)) == expected


def test_a_held_quiet_notice_is_released_as_a_quiet_row() -> None:
    held = ExistingAlert(OPEN, WARNING, None, None, Notice.NEW, QUIET)
    released = release(held, None, LIVE)
    assert (released.notice, released.mode) == (Notice.NEW, QUIET)


@pytest.mark.parametrize(
    ("sibling_mode", "mode", "expected"),
    [
        (QUIET, LIVE, None),  # a quiet critical nobody heard of does not mute live news
        (QUIET, QUIET, 7),  # but records what inhibition would have held
        (LIVE, QUIET, 7),
    ],
)
def test_a_quiet_critical_mutes_only_unsent_notices(
    sibling_mode: NoticeMode, mode: NoticeMode, expected: int | None
) -> None:
    critical = SiblingAlert(7, "usage_drop", OPEN, CRITICAL, sibling_mode)
    assert inhibitor_of("inactivity", WARNING, [critical], InhibitPolicy(), mode) == expected


def test_a_quiet_notice_tells_nobody_and_keeps_who_was_told() -> None:
    new = alert_columns(Decision(OPEN, WARNING, Notice.NEW, mode=QUIET), NOW)
    assert new["notice_mode"] == "quiet" and new["last_notified_at"] is None
    escalated = alert_columns(Decision(OPEN, CRITICAL, Notice.ESCALATED, mode=QUIET), NOW)
    assert escalated["notice_mode"] == "quiet" and "last_notified_at" not in escalated  # kept as it was


def notice(sig: RiskSignal, kind: Notice = Notice.NEW) -> AlertNotice:
    return AlertNotice(signal=sig, notice=kind, alert_id=1, mention="U0ANA", playbook="Call the champion")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (quality(6.8, 0.14), "This rule was right 14% of the time in backtests (6.8x chance)"),
        (quality(1.1, 0.022), "This rule was right 2.2% of the time in backtests (1.1x chance)"),
        (quality(3.16, 0.004), "This rule was right 0.4% of the time in backtests (3.2x chance)"),
        (quality(None, 0.5), "This rule was right 50% of the time in backtests"),
        (quality(4.0, None), "This rule's alerts were 4.0x chance in backtests"),
        (quality(None, None), ""),
        (quality(math.inf, math.nan), ""),
        (None, ""),
    ],
)
def test_the_track_record_line(q: RuleQuality | None, expected: str) -> None:
    assert track_record_line(signal(quality=q)) == expected


def test_slack_and_email_carry_the_track_record_and_a_resolve_does_not() -> None:
    sig = signal(quality=quality(6.8, 0.14))
    line = "This rule was right 14% of the time in backtests (6.8x chance)"
    msg = slack_message(notice(sig))
    details = msg["blocks"][1]["text"]
    assert details["type"] == "plain_text" and details["text"].endswith(line)
    assert all(len(b["text"]["text"]) <= 3000 for b in msg["blocks"] if "text" in b)
    mail = email_message(notice(sig))
    assert line in mail.text and f"<p>{line}</p>" in mail.html
    assert line in digest_email([notice(sig)], "today").text
    resolved = notice(signal(quality=quality(6.8, 0.14)), Notice.RESOLVED)
    assert line not in str(slack_message(resolved)) and line not in email_message(resolved).text
    assert "backtests" not in str(slack_message(notice(signal())))  # no quality, no line


def test_the_track_record_stays_within_slack_limits_with_a_long_explanation() -> None:
    sig = signal(explanation="x" * 5000, quality=quality(6.8, 0.14))
    section = slack_message(notice(sig))["blocks"][1]["text"]["text"]
    assert len(section) <= 3000


@pytest.mark.parametrize(("value", "expected"), [("2.5", 2.5), ("0", 0.0), (" 1 ", 1.0)])
def test_the_floor_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("CHURNWATCH_MIN_RULE_LIFT", value)
    assert AlerterSettings().min_rule_lift == expected


def test_the_floor_defaults_to_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURNWATCH_MIN_RULE_LIFT", raising=False)
    assert AlerterSettings().min_rule_lift == 3.0


@pytest.mark.parametrize("value", ["-1", "two", "nan", "inf", ""])
def test_a_bad_floor_refuses_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CHURNWATCH_MIN_RULE_LIFT", value)
    with pytest.raises(ValidationError, match="CHURNWATCH_MIN_RULE_LIFT"):
        AlerterSettings()
