from datetime import UTC, date, datetime, timedelta

from services.scorer.detectors import Thresholds, current_conditions, transitions
from services.scorer.evaluate import AccountRecord, evaluate_account
from services.scorer.scoring import score_account
from services.scorer.windows import WindowMetrics
from shared.events import EVENT_ADAPTER, Event
from shared.signals import Severity, SignalType

TH = Thresholds()


def metrics(**kw: object) -> WindowMetrics:
    base: dict[str, object] = dict(
        as_of=date(2026, 11, 1),
        activity_current=10,
        activity_baseline=10,
        has_baseline=True,
        active_users_current=5,
        features_current=3,
        tickets_current=0,
        tickets_baseline_weekly=0.5,
        escalations_current=0,
        days_since_activity=0,
    )
    base.update(kw)
    return WindowMetrics(**base)  # type: ignore[arg-type]


def conditions(**kw: object) -> set[SignalType]:
    m = metrics(**kw)
    return set(current_conditions(m, score_account(m), TH))


def test_healthy_account_raises_nothing() -> None:
    assert conditions() == set()


def test_usage_drop_over_20_percent() -> None:
    assert SignalType.USAGE_DROP in conditions(activity_current=7.9)
    assert SignalType.USAGE_DROP not in conditions(activity_current=8.1)


def test_usage_drop_critical_below_half() -> None:
    m = metrics(activity_current=4)
    assert current_conditions(m, score_account(m), TH)[SignalType.USAGE_DROP].severity is Severity.CRITICAL


def test_ticket_spike_needs_volume_and_rise() -> None:
    assert SignalType.TICKET_SPIKE in conditions(tickets_current=3, tickets_baseline_weekly=1.0)
    assert SignalType.TICKET_SPIKE not in conditions(tickets_current=3, tickets_baseline_weekly=2.0)
    assert SignalType.TICKET_SPIKE not in conditions(tickets_current=2, tickets_baseline_weekly=0.0)


def test_inactivity_after_five_days() -> None:
    assert SignalType.INACTIVITY in conditions(days_since_activity=6)
    assert SignalType.INACTIVITY not in conditions(days_since_activity=5)


def test_transitions_raise_once_escalate_and_recover() -> None:
    m = metrics(activity_current=7)
    now = current_conditions(m, score_account(m), TH)
    first = transitions(now, {})
    assert [(t.condition.signal_type, t.recovered) for t in first] == [(SignalType.USAGE_DROP, False)]
    assert transitions(now, {SignalType.USAGE_DROP: Severity.WARNING}) == []  # ongoing: not again
    worse = current_conditions(metrics(activity_current=3), score_account(metrics(activity_current=3)), TH)
    assert any(
        t.condition.signal_type is SignalType.USAGE_DROP
        for t in transitions(worse, {SignalType.USAGE_DROP: Severity.WARNING})
    )
    cleared = transitions({}, {SignalType.USAGE_DROP: Severity.WARNING})
    assert [(t.condition.signal_type, t.recovered) for t in cleared] == [(SignalType.USAGE_DROP, True)]


def _login(i: int, at: datetime) -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "kind": "usage",
            "action": "login",
            "event_id": f"e{i}",
            "account_id": "a",
            "occurred_at": at.isoformat(),
            "quantity": 10,
        }
    )


def test_evaluate_is_reproducible_and_ids_are_deterministic() -> None:
    start = datetime(2026, 9, 1, 10, tzinfo=UTC)
    events = [_login(d, start + timedelta(days=d)) for d in range(28)]
    events += [_login(100 + d, start + timedelta(days=28 + d, hours=1)) for d in range(0, 7, 3)]

    def run() -> list[str]:
        record, ids = AccountRecord(), []
        for e in events:
            ev = evaluate_account("a", record, [e], None)
            record = ev.record
            ids += [s.signal_id for s in ev.signals]
        return ids

    first = run()
    assert first, "a drop from daily to every third day must raise usage_drop"
    assert first == run()
