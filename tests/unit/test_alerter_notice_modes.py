"""Notice modes: which notices are sent (live) and which only recorded (historic backfill, shadow alerter).

The pure rules of notice_mode.py and lifecycle.py, the wall clock passed in, no database.
"""

from __future__ import annotations

from datetime import timedelta

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
from services.alerter.notice_mode import DeliveryMode, DeliveryPolicy, NoticeMode, quietest
from services.alerter.settings import AlerterSettings
from shared.signals import RiskSignal, Severity
from tests.unit.test_alerting import T0, signal

LIVE, HISTORIC, SHADOW = NoticeMode.LIVE, NoticeMode.HISTORIC, NoticeMode.SHADOW
OPEN, ACKED, SNOOZED, RESOLVED = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED, AlertState.RESOLVED)
WARNING, CRITICAL, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO
TWO_DAYS = timedelta(days=2)
TICK = timedelta(microseconds=1)
NOW = T0 + timedelta(days=100)


@pytest.mark.parametrize(
    ("age", "delivery", "max_age", "expected"),
    [
        (timedelta(0), DeliveryMode.LIVE, TWO_DAYS, LIVE),
        (timedelta(hours=1), DeliveryMode.LIVE, TWO_DAYS, LIVE),
        (TWO_DAYS, DeliveryMode.LIVE, TWO_DAYS, LIVE),  # exactly the max age is still news
        (TWO_DAYS + TICK, DeliveryMode.LIVE, TWO_DAYS, HISTORIC),  # older than it is history
        (timedelta(days=270), DeliveryMode.LIVE, TWO_DAYS, HISTORIC),  # a 9-month backfill
        (-timedelta(minutes=5), DeliveryMode.LIVE, TWO_DAYS, LIVE),  # a producer's clock ahead of ours
        (timedelta(hours=1), DeliveryMode.SHADOW, TWO_DAYS, SHADOW),
        (TWO_DAYS, DeliveryMode.SHADOW, TWO_DAYS, SHADOW),
        (TWO_DAYS + TICK, DeliveryMode.SHADOW, TWO_DAYS, HISTORIC),  # historic wins: not even live would send
        (timedelta(minutes=61), DeliveryMode.LIVE, timedelta(hours=1), HISTORIC),
        (timedelta(minutes=59), DeliveryMode.LIVE, timedelta(hours=1), LIVE),
    ],
)
def test_a_signal_is_historic_when_its_event_time_is_older_than_the_max_age(
    age: timedelta, delivery: DeliveryMode, max_age: timedelta, expected: NoticeMode
) -> None:
    assert DeliveryPolicy(delivery, max_age).for_signal(NOW - age, NOW) is expected


def test_the_outbox_status_a_mode_starts_in() -> None:
    assert [m.outbox_status for m in (LIVE, HISTORIC, SHADOW)] == ["pending", "historic", "shadow"]
    assert quietest(LIVE, SHADOW) is SHADOW and quietest(SHADOW, HISTORIC) is HISTORIC and quietest() is LIVE


@pytest.mark.parametrize(
    ("alert_mode", "delivery", "expected"),
    [
        (LIVE, DeliveryMode.LIVE, LIVE),
        (HISTORIC, DeliveryMode.LIVE, HISTORIC),  # a person resolving a backfilled alert: recorded only
        (SHADOW, DeliveryMode.LIVE, SHADOW),
        (LIVE, DeliveryMode.SHADOW, SHADOW),
        (HISTORIC, DeliveryMode.SHADOW, HISTORIC),
    ],
)
def test_follow_up_notices_are_as_quiet_as_the_alert(
    alert_mode: NoticeMode, delivery: DeliveryMode, expected: NoticeMode
) -> None:
    assert DeliveryPolicy(delivery).follow_up(alert_mode) is expected


def alert(state: AlertState = OPEN, severity: Severity = WARNING, mode: NoticeMode = HISTORIC) -> ExistingAlert:
    return ExistingAlert(state, severity, None, None, None, mode)


@pytest.mark.parametrize(
    ("existing", "sig", "mode", "expected"),
    [
        (None, signal(), HISTORIC, (OPEN, WARNING, Notice.NEW, HISTORIC)),  # the backfill runs the logic
        (alert(), signal(), HISTORIC, None),  # history dedups like live traffic
        (alert(), signal(severity=CRITICAL), HISTORIC, (OPEN, CRITICAL, Notice.ESCALATED, HISTORIC)),
        # Open from history, nobody told: a recent signal is news, at any severity, not "already open".
        (alert(), signal(), LIVE, (OPEN, WARNING, Notice.NEW, LIVE)),
        (alert(), signal(severity=CRITICAL), LIVE, (OPEN, CRITICAL, Notice.NEW, LIVE)),
        (alert(severity=CRITICAL), signal(), LIVE, (OPEN, WARNING, Notice.NEW, LIVE)),
        (alert(mode=SHADOW), signal(), LIVE, (OPEN, WARNING, Notice.NEW, LIVE)),  # shadow -> live switch
        (alert(mode=LIVE), signal(), LIVE, None),  # told already: the usual dedup
        (alert(mode=LIVE), signal(), HISTORIC, None),
        (alert(mode=LIVE), signal(severity=CRITICAL), HISTORIC, (OPEN, CRITICAL, Notice.ESCALATED, HISTORIC)),
        (alert(ACKED), signal(), LIVE, None),  # a person acknowledged it (API): seen
        (alert(SNOOZED), signal(), LIVE, None),
        (alert(ACKED), signal(severity=CRITICAL), LIVE, (ACKED, CRITICAL, Notice.ESCALATED, LIVE)),
        (alert(RESOLVED), signal(), LIVE, (OPEN, WARNING, Notice.NEW, LIVE)),
        # A recovery of an alert nobody was told about is not told either; one of a told alert is.
        (alert(), signal(recovered=True, severity=INFO), LIVE, (RESOLVED, WARNING, Notice.RESOLVED, HISTORIC)),
        (alert(mode=LIVE), signal(recovered=True), LIVE, (RESOLVED, WARNING, Notice.RESOLVED, LIVE)),
        (alert(mode=LIVE), signal(recovered=True), HISTORIC, (RESOLVED, WARNING, Notice.RESOLVED, HISTORIC)),
        (alert(mode=LIVE), signal(recovered=True), SHADOW, (RESOLVED, WARNING, Notice.RESOLVED, SHADOW)),
        (None, signal(), SHADOW, (OPEN, WARNING, Notice.NEW, SHADOW)),
        (alert(mode=SHADOW), signal(), SHADOW, None),
    ],
)
def test_what_a_signal_does_by_mode(
    existing: ExistingAlert | None,
    sig: RiskSignal,
    mode: NoticeMode,
    expected: tuple[AlertState, Severity, Notice, NoticeMode] | None,
) -> None:
    decision = decide(existing, sig, mode)
    got = None if decision is None else (decision.state, decision.severity, decision.notice, decision.mode)
    assert got == expected


LATE = T0 + timedelta(hours=5)


@pytest.mark.parametrize(
    ("existing", "own", "expected"),
    [
        (ExistingAlert(OPEN, WARNING, T0, mode=LIVE), LIVE, (OPEN, Notice.REMINDER, LIVE)),
        (ExistingAlert(OPEN, WARNING, T0, mode=HISTORIC), LIVE, None),  # no reminders for history
        (ExistingAlert(OPEN, WARNING, T0, mode=SHADOW), LIVE, (OPEN, Notice.REMINDER, SHADOW)),
        (ExistingAlert(OPEN, WARNING, T0, mode=LIVE), SHADOW, (OPEN, Notice.REMINDER, SHADOW)),
        (ExistingAlert(OPEN, WARNING, T0, mode=HISTORIC), SHADOW, None),
        # An expired snooze reopens a historic alert silently: no "snooze expired" re-send.
        (ExistingAlert(SNOOZED, WARNING, None, T0, mode=HISTORIC), LIVE, (OPEN, None, HISTORIC)),
        (ExistingAlert(SNOOZED, WARNING, None, T0, mode=LIVE), LIVE, (OPEN, Notice.REMINDER, LIVE)),
        (ExistingAlert(SNOOZED, WARNING, None, T0, mode=LIVE), SHADOW, (OPEN, Notice.REMINDER, SHADOW)),
        (ExistingAlert(SNOOZED, WARNING, None, LATE + TICK, mode=HISTORIC), LIVE, None),  # not yet expired
    ],
)
def test_timers_never_page_about_history(
    existing: ExistingAlert, own: NoticeMode, expected: tuple[AlertState, Notice | None, NoticeMode] | None
) -> None:
    decision = on_timer(existing, LATE, timedelta(hours=4), own)
    assert (None if decision is None else (decision.state, decision.notice, decision.mode)) == expected


@pytest.mark.parametrize(
    ("held_mode", "own", "state", "expected"),
    [
        (HISTORIC, LIVE, OPEN, (Notice.NEW, HISTORIC)),  # released, but recorded only
        (LIVE, LIVE, OPEN, (Notice.NEW, LIVE)),  # a live held notice is sent, whatever released it
        (SHADOW, LIVE, OPEN, (Notice.NEW, SHADOW)),
        (LIVE, SHADOW, OPEN, (Notice.NEW, SHADOW)),
        (HISTORIC, LIVE, ACKED, (None, HISTORIC)),
    ],
)
def test_a_released_notice_keeps_the_mode_it_was_held_in(
    held_mode: NoticeMode, own: NoticeMode, state: AlertState, expected: tuple[Notice | None, NoticeMode]
) -> None:
    held = ExistingAlert(state, WARNING, None, None, Notice.NEW, held_mode)
    decision = release(held, None, own)
    assert (decision.notice, decision.mode) == expected
    still_muted = release(held, 9, own)
    assert (still_muted.notice, still_muted.held, still_muted.inhibited_by, still_muted.mode) == (
        None,
        Notice.NEW,
        9,
        held_mode,
    )


def critical(mode: NoticeMode, state: AlertState = OPEN) -> SiblingAlert:
    return SiblingAlert(7, "usage_drop", state, CRITICAL, mode)


@pytest.mark.parametrize(
    ("sibling", "mode", "expected"),
    [
        (critical(LIVE), LIVE, 7),
        (critical(LIVE), HISTORIC, 7),
        (critical(HISTORIC), HISTORIC, 7),  # the backfill records what inhibition would have held
        (critical(HISTORIC), SHADOW, 7),
        (critical(SHADOW), SHADOW, 7),
        (critical(HISTORIC), LIVE, None),  # a critical nobody saw does not mute live news
        (critical(SHADOW), LIVE, None),
        (critical(HISTORIC, RESOLVED), HISTORIC, None),
    ],
)
def test_a_critical_nobody_was_told_about_mutes_only_unsent_notices(
    sibling: SiblingAlert, mode: NoticeMode, expected: int | None
) -> None:
    assert inhibitor_of("inactivity", WARNING, [sibling], InhibitPolicy(), mode) == expected


def test_a_historic_notice_tells_nobody_and_records_its_mode() -> None:
    historic = alert_columns(Decision(OPEN, WARNING, Notice.NEW, mode=HISTORIC), NOW)
    assert historic["notice_mode"] == "historic" and historic["last_notified_at"] is None
    assert historic["opened_at"] == NOW
    shadow = alert_columns(Decision(OPEN, WARNING, Notice.REMINDER, mode=SHADOW), NOW)
    assert shadow["notice_mode"] == "shadow" and shadow["last_notified_at"] == NOW  # paced like live
    held = alert_columns(Decision(OPEN, WARNING, None, held=Notice.NEW, inhibited_by=7, mode=HISTORIC), NOW)
    assert held["notice_mode"] == "historic" and held["last_notified_at"] is None
    quiet = alert_columns(Decision(OPEN, WARNING, None, mode=HISTORIC), NOW)  # a silent reopen keeps the mode
    assert "notice_mode" not in quiet and "last_notified_at" not in quiet


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("CHURNWATCH_DELIVERY_MODE", "shadow", DeliveryMode.SHADOW),
        ("CHURNWATCH_DELIVERY_MODE", " Live ", DeliveryMode.LIVE),
        ("CHURNWATCH_NOTIFY_MAX_AGE_SECONDS", "3600", 3600.0),
    ],
)
def test_settings_read_the_modes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(env, value)
    settings = AlerterSettings()
    assert getattr(settings, env.removeprefix("CHURNWATCH_").lower()) == expected


def test_settings_default_to_live_and_two_days(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("CHURNWATCH_DELIVERY_MODE", "CHURNWATCH_NOTIFY_MAX_AGE_SECONDS"):
        monkeypatch.delenv(env, raising=False)
    settings = AlerterSettings()
    assert (settings.delivery_mode, settings.notify_max_age_seconds) == (DeliveryMode.LIVE, 172800.0)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("CHURNWATCH_DELIVERY_MODE", "dry-run"),
        ("CHURNWATCH_DELIVERY_MODE", ""),
        ("CHURNWATCH_NOTIFY_MAX_AGE_SECONDS", "0"),
        ("CHURNWATCH_NOTIFY_MAX_AGE_SECONDS", "-60"),
        ("CHURNWATCH_NOTIFY_MAX_AGE_SECONDS", "two days"),
        ("CHURNWATCH_NOTIFY_MAX_AGE_SECONDS", "inf"),
    ],
)
def test_a_bad_mode_setting_refuses_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=env):
        AlerterSettings()
