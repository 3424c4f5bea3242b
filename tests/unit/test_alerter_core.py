"""The alerter's core (core.decide_change) through each lifecycle path, table-driven, without a database.

Each case: the account's alerts before, one change, and the effects: what each alert's row says afterwards,
which notices are queued (cause prefix, notice, mode) and which are held back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from services.alerter.changes import (
    AlertRow,
    Change,
    Effects,
    HoldEnded,
    NoticeRouting,
    OutcomeRecorded,
    PersonActed,
    SignalArrived,
    TimerFired,
    UnknownAlert,
)
from services.alerter.core import decide_change
from services.alerter.lifecycle import Action, AlertState, ExistingAlert, Notice, Outcome, TransitionRefused
from services.alerter.notice_mode import DeliveryMode, DeliveryPolicy, NoticeMode
from services.alerter.routing import Addresses, Channel
from services.alerter.routing_config import DEFAULT_RULES_PATH, load_rules
from shared.signals import RuleQuality, Severity, SignalType
from tests.unit.test_alerting import HOUR, T0, signal

NOW = T0 + HOUR
OPEN, ACKED, SNOOZED, RESOLVED = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED, AlertState.RESOLVED)
WARNING, CRITICAL, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO
LIVE, HISTORIC, QUIET, SHADOW = NoticeMode.LIVE, NoticeMode.HISTORIC, NoticeMode.QUIET, NoticeMode.SHADOW
ADDRESSES = Addresses(
    slack_webhooks={"csm": "https://hooks.example/csm"}, default_slack_webhook="https://hooks.example/d"
)
ROUTING = NoticeRouting(load_rules(DEFAULT_RULES_PATH), ADDRESSES)
WEAK = RuleQuality(precision=0.02, lift=1.1, source="test")


def row(
    alert_id: int,
    kind: str = "usage_drop",
    state: AlertState = OPEN,
    severity: Severity = WARNING,
    *,
    notified: bool = True,
    held: Notice | None = None,
    inhibited_by: int | None = None,
    mode: NoticeMode = LIVE,
    snoozed_until: Any = None,
    reminders: int = 0,
) -> AlertRow:
    existing = ExistingAlert(state, severity, T0 if notified else None, snoozed_until, held, mode)
    last = signal(signal_type=SignalType(kind), severity=severity)
    return AlertRow(alert_id, "a1", kind, existing, last, inhibited_by, reminders)


@dataclass(frozen=True)
class Case:
    name: str
    alerts: list[AlertRow]
    change: Change
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # signal type -> expected columns (subset)
    notices: list[tuple[str, str, Notice, NoticeMode]] = field(default_factory=list)  # type, cause prefix, ...
    held: list[tuple[str, Notice]] = field(default_factory=list)
    routing: NoticeRouting = ROUTING


CASES = [
    Case(
        "a first signal opens the alert and tells its people",
        [],
        SignalArrived(signal()),
        {"usage_drop": {"state": "open", "severity": "warning", "last_notified_at": NOW, "opened_at": NOW}},
        [("usage_drop", "s1", Notice.NEW, LIVE)],
    ),
    Case("the same severity again changes nothing", [row(1)], SignalArrived(signal(signal_id="s2"))),
    Case(
        "a higher severity escalates",
        [row(1, state=ACKED)],
        SignalArrived(signal(signal_id="s2", severity=CRITICAL)),
        {"usage_drop": {"state": "acknowledged", "severity": "critical"}},
        [("usage_drop", "s2", Notice.ESCALATED, LIVE)],
    ),
    Case(
        "a recovery resolves it and says so",
        [row(1)],
        SignalArrived(signal(signal_id="s3", recovered=True, severity=INFO)),
        {"usage_drop": {"state": "resolved", "resolved_at": NOW}},
        [("usage_drop", "s3", Notice.RESOLVED, LIVE)],
    ),
    Case(
        "a recovery of an alert nobody was told about resolves it quietly",
        [row(1, mode=HISTORIC, notified=False)],
        SignalArrived(signal(signal_id="s3", recovered=True, severity=INFO)),
        {"usage_drop": {"state": "resolved", "notice_mode": "historic"}},
        [("usage_drop", "s3", Notice.RESOLVED, HISTORIC)],
    ),
    Case(
        "a backfilled signal is recorded as historic",
        [],
        SignalArrived(signal(occurred_at=T0 - timedelta(days=30))),
        {"usage_drop": {"state": "open", "notice_mode": "historic", "last_notified_at": None}},
        [("usage_drop", "s1", Notice.NEW, HISTORIC)],
    ),
    Case(
        "a rule below the lift floor is quiet",
        [],
        SignalArrived(signal(quality=WEAK)),
        {"usage_drop": {"notice_mode": "quiet"}},
        [("usage_drop", "s1", Notice.NEW, QUIET)],
    ),
    Case(
        "a shadow alerter records what it would send",
        [],
        SignalArrived(signal()),
        {"usage_drop": {"notice_mode": "shadow", "last_notified_at": NOW}},
        [("usage_drop", "s1", Notice.NEW, SHADOW)],
        routing=NoticeRouting(ROUTING.rules, ADDRESSES, DeliveryPolicy(DeliveryMode.SHADOW)),
    ),
    Case(
        "an open critical of another type holds a warning back",
        [row(7, "escalation", severity=CRITICAL)],
        SignalArrived(signal()),
        {"usage_drop": {"inhibited_by": 7, "held_notice": "new", "last_notified_at": None}},
        held=[("usage_drop", Notice.NEW)],
    ),
    Case(
        "the critical's recovery releases the held warning: one resolved, one released notice",
        [row(7, "escalation", severity=CRITICAL), row(8, held=Notice.NEW, inhibited_by=7, notified=False)],
        SignalArrived(signal(signal_id="r", signal_type=SignalType.ESCALATION, recovered=True, severity=INFO)),
        {"escalation": {"state": "resolved"}, "usage_drop": {"inhibited_by": None, "held_notice": None}},
        [("escalation", "r", Notice.RESOLVED, LIVE), ("usage_drop", "released:8:7:", Notice.NEW, LIVE)],
    ),
    Case(
        "a release while another critical still mutes passes the hold on",
        [
            row(7, "escalation", severity=CRITICAL),
            row(9, "renewal_risk", severity=CRITICAL),
            row(8, held=Notice.NEW, inhibited_by=7, notified=False),
        ],
        SignalArrived(signal(signal_id="r", signal_type=SignalType.ESCALATION, recovered=True, severity=INFO)),
        {"usage_drop": {"inhibited_by": 9, "held_notice": "new"}},
        [("escalation", "r", Notice.RESOLVED, LIVE)],
    ),
    Case(
        "a person acknowledges: no notice, the hold stays",
        [row(8, held=Notice.NEW, inhibited_by=7)],
        PersonActed(8, Action.ACK, HOUR),
        {"usage_drop": {"state": "acknowledged", "acknowledged_at": NOW, "inhibited_by": "<unset>"}},
    ),
    Case(
        "snoozing a critical releases what it held",
        [row(7, "escalation", severity=CRITICAL), row(8, held=Notice.NEW, inhibited_by=7, notified=False)],
        PersonActed(7, Action.SNOOZE, HOUR),
        {"escalation": {"state": "snoozed", "snoozed_until": NOW + HOUR}, "usage_drop": {"inhibited_by": None}},
        [("usage_drop", "released:8:7:", Notice.NEW, LIVE)],
    ),
    Case(
        "resolving with an outcome tells its people and stores the outcome",
        [row(1)],
        PersonActed(1, Action.RESOLVE, HOUR, Outcome.SAVED, "renewed after a call", "ana"),
        {"usage_drop": {"state": "resolved", "outcome": "saved", "outcome_note": "renewed after a call"}},
        [("usage_drop", "resolve:1:", Notice.RESOLVED, LIVE)],
    ),
    Case(
        "an outcome recorded on a resolved alert",
        [row(1, state=RESOLVED)],
        OutcomeRecorded(1, Outcome.FALSE_ALARM, by="ana"),
        {"usage_drop": {"outcome": "false_alarm", "outcome_by": "ana"}},
    ),
    Case(
        "an unacknowledged alert is reminded",
        [row(1, reminders=2)],
        TimerFired(1, timedelta(minutes=30)),
        {"usage_drop": {"reminders_sent": 3, "last_notified_at": NOW}},
        [("usage_drop", "reminder:1:3", Notice.REMINDER, LIVE)],
    ),
    Case("an acknowledged alert is not", [row(1, state=ACKED)], TimerFired(1, timedelta(minutes=30))),
    Case("a historic alert is never reminded", [row(1, mode=HISTORIC)], TimerFired(1, timedelta(minutes=30))),
    Case(
        "an expired snooze reopens with a reminder",
        [row(1, state=SNOOZED, snoozed_until=NOW - HOUR)],
        TimerFired(1, None),
        {"usage_drop": {"state": "open", "snoozed_until": None}},
        [("usage_drop", "reminder:1:1", Notice.REMINDER, LIVE)],
    ),
    Case(
        "a stale hold is released by the sweep",
        [row(7, "escalation", state=RESOLVED, severity=CRITICAL), row(8, held=Notice.REMINDER, inhibited_by=7)],
        HoldEnded(7),
        {"usage_drop": {"inhibited_by": None, "held_notice": None, "last_notified_at": NOW}},
        [("usage_drop", "released:8:7:", Notice.REMINDER, LIVE)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_lifecycle_path(case: Case) -> None:
    effects = decide_change(case.change, case.alerts, case.routing, NOW)
    written = _by_type(effects)
    for kind, expected in case.rows.items():
        assert kind in written, f"no write for {kind}: {effects.writes}"
        assert {k: written[kind].get(k, "<unset>") for k in expected} == expected
    if not case.rows and not case.notices:
        assert effects.notices == () and (effects.writes == () or isinstance(case.change, PersonActed))
    got = [(n.signal_type, n.cause, n.notice, n.mode) for n in effects.notices]
    assert len(got) == len(case.notices), got
    for (kind, cause, notice, mode), (want_kind, prefix, want_notice, want_mode) in zip(got, case.notices, strict=True):
        assert (kind, notice, mode) == (want_kind, want_notice, want_mode)
        assert cause.startswith(prefix), cause
    assert list(effects.held) == case.held


def _by_type(effects: Effects) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for w in effects.writes:
        out.setdefault(w.signal_type, {}).update(w.cols)
    return out


def test_a_new_signal_is_routed_to_its_people_and_stored_with_the_alert() -> None:
    effects = decide_change(SignalArrived(signal()), [], ROUTING, NOW)
    (write,) = effects.writes
    assert write.alert_id is None and write.signal == signal()  # created by key, with its signal
    (notice,) = effects.notices
    assert {(d.channel, d.target) for d in notice.destinations} >= {(Channel.SLACK, "https://hooks.example/csm")}


@pytest.mark.parametrize(
    ("alerts", "change", "error"),
    [
        ([row(1, state=RESOLVED)], PersonActed(1, Action.ACK, HOUR), TransitionRefused),
        ([row(1)], OutcomeRecorded(1, Outcome.SAVED), TransitionRefused),  # not resolved yet
        ([row(1)], PersonActed(2, Action.ACK, HOUR), UnknownAlert),
    ],
)
def test_refused_changes_write_nothing(alerts: list[AlertRow], change: Change, error: type[Exception]) -> None:
    with pytest.raises(error):
        decide_change(change, alerts, ROUTING, NOW)
