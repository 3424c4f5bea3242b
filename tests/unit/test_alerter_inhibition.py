"""Inhibition and pacing: the pure rules (lifecycle.py, pacing.py, the routing file's inhibit section)."""

from __future__ import annotations

import pytest

from services.alerter.core import alert_columns
from services.alerter.lifecycle import (
    AlertState,
    Decision,
    ExistingAlert,
    InhibitPolicy,
    Notice,
    SiblingAlert,
    inhibit,
    inhibitor_of,
    release,
)
from services.alerter.pacing import TargetPacer
from services.alerter.routing_config import DEFAULT_RULES_PATH, load_rules, parse_rules
from shared.signals import Severity
from tests.unit.test_alerting import T0

ON = InhibitPolicy()
OPEN, ACKED, SNOOZED, RESOLVED = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED, AlertState.RESOLVED)
WARNING, CRITICAL, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def critical(alert_id: int = 7, state: AlertState = OPEN, signal_type: str = "usage_drop") -> SiblingAlert:
    return SiblingAlert(alert_id, signal_type, state, CRITICAL)


@pytest.mark.parametrize(
    ("signal_type", "severity", "siblings", "policy", "expected"),
    [
        ("inactivity", WARNING, [critical()], ON, 7),  # a warning of another type is muted
        ("inactivity", WARNING, [critical(state=ACKED)], ON, 7),  # acknowledged still mutes
        ("inactivity", WARNING, [critical(state=SNOOZED)], ON, None),  # snoozed or resolved does not
        ("inactivity", WARNING, [critical(state=RESOLVED)], ON, None),
        ("usage_drop", WARNING, [critical()], ON, None),  # never its own type
        ("inactivity", CRITICAL, [critical()], ON, None),  # criticals are never muted
        ("inactivity", INFO, [critical()], ON, None),  # only the target severities
        ("inactivity", INFO, [critical()], InhibitPolicy(targets=frozenset({INFO, WARNING})), 7),
        ("inactivity", WARNING, [critical()], InhibitPolicy(enabled=False), None),
        ("inactivity", WARNING, [SiblingAlert(3, "score_drop", OPEN, WARNING)], ON, None),  # warnings don't mute
        ("inactivity", WARNING, [critical(9), critical(4, signal_type="escalation")], ON, 4),  # lowest id
    ],
)
def test_which_critical_alert_mutes_a_notice(
    signal_type: str, severity: Severity, siblings: list[SiblingAlert], policy: InhibitPolicy, expected: int | None
) -> None:
    assert inhibitor_of(signal_type, severity, siblings, policy) == expected


@pytest.mark.parametrize(
    ("notice", "held_before", "held"),
    [
        (Notice.NEW, None, Notice.NEW),
        (Notice.REMINDER, None, Notice.REMINDER),
        (Notice.ESCALATED, Notice.NEW, Notice.NEW),  # nobody saw it yet: still new
        (Notice.REMINDER, Notice.ESCALATED, Notice.REMINDER),
        (Notice.RESOLVED, Notice.NEW, Notice.RESOLVED),  # resolved before anyone heard of it
    ],
)
def test_an_inhibited_notice_is_held_not_sent(notice: Notice, held_before: Notice | None, held: Notice) -> None:
    d = inhibit(Decision(OPEN, WARNING, notice), 7, held_before)
    assert (d.notice, d.held, d.inhibited_by) == (None, held, 7)


def test_an_uninhibited_decision_passes_and_clears_the_hold() -> None:
    d = inhibit(Decision(OPEN, WARNING, Notice.NEW), None, Notice.NEW)
    assert (d.notice, d.held, d.inhibited_by) == (Notice.NEW, None, None)


@pytest.mark.parametrize(
    ("existing", "still_muted_by", "expected"),
    [
        (ExistingAlert(OPEN, WARNING, held=Notice.NEW), None, (Notice.NEW, None, None)),  # sent once, as new
        (ExistingAlert(OPEN, WARNING, T0, held=Notice.REMINDER), None, (Notice.REMINDER, None, None)),
        (ExistingAlert(ACKED, WARNING, held=Notice.NEW), None, (None, None, None)),  # someone has it: silent
        (ExistingAlert(SNOOZED, WARNING, held=Notice.NEW), None, (None, None, None)),  # its snooze decides
        (ExistingAlert(RESOLVED, WARNING, held=Notice.RESOLVED), None, (None, None, None)),
        (ExistingAlert(OPEN, WARNING, held=Notice.NEW), 9, (None, Notice.NEW, 9)),  # another critical takes over
    ],
)
def test_release_when_the_critical_alert_ends(
    existing: ExistingAlert, still_muted_by: int | None, expected: tuple[Notice | None, Notice | None, int | None]
) -> None:
    d = release(existing, still_muted_by)
    assert (d.notice, d.held, d.inhibited_by) == expected


def test_a_held_new_alert_counts_as_not_notified() -> None:
    held = alert_columns(Decision(OPEN, WARNING, None, held=Notice.NEW, inhibited_by=7), T0)
    assert held["last_notified_at"] is None and held["opened_at"] == T0
    assert (held["inhibited_by"], held["held_notice"]) == (7, "new")
    sent = alert_columns(Decision(OPEN, WARNING, Notice.NEW), T0)
    assert sent["last_notified_at"] == T0 and (sent["inhibited_by"], sent["held_notice"]) == (None, None)


def test_the_shipped_rules_inhibit_warnings_and_a_file_can_turn_it_off() -> None:
    assert load_rules(DEFAULT_RULES_PATH).inhibit.policy() == ON
    off = parse_rules("inhibit: {enabled: false}\ndefault: {notify: [{slack: x}]}\n")
    assert not off.inhibit.policy().enabled
    assert parse_rules("default: {notify: [{slack: x}]}\n").inhibit.policy() == ON  # on unless turned off


def test_pacer_spaces_sends_per_target_and_honours_retry_after() -> None:
    pacer = TargetPacer()
    pacer.reserve("a", 100.0, 1.0)
    pacer.reserve("b", 100.2, 1.0)
    pacer.reserve("mail", 100.2, 0.0)  # unpaced channel: never held
    assert pacer.held(100.5) == ["a", "b"]
    assert pacer.next_free_in(100.5) == pytest.approx(0.5)
    assert pacer.held(101.0) == ["b"]  # free exactly at its slot
    pacer.hold_until("b", 130.0)  # a Retry-After of 30 s
    pacer.reserve("b", 101.3, 1.0)  # a reservation never shortens it
    assert pacer.held(129.0) == ["b"] and pacer.next_free_in(129.0) == pytest.approx(1.0)
    assert pacer.held(130.0) == [] and pacer.next_free_in(130.0) is None
