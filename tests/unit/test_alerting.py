from datetime import UTC, datetime

import pytest

from services.alerter.lifecycle import AlertState, ExistingAlert, Notice, decide
from services.alerter.messages import email_message, slack_escape, slack_message
from services.alerter.routing import Channel, RoutingDefaults, route_signal
from shared.accounts import AccountProfile, Contact
from shared.signals import Audience, RiskSignal, Severity, SignalType

ACCOUNT = AccountProfile(
    account_id="a1",
    name="*bold* <!channel> <script>alert(1)</script>",
    csm=Contact(name="Ana", email="ana@csm.example.com"),
    support_route=Contact(email="help@example.com"),
)


def signal(**kw: object) -> RiskSignal:
    base: dict[str, object] = dict(
        signal_id="s1",
        account_id="a1",
        signal_type=SignalType.USAGE_DROP,
        severity=Severity.WARNING,
        audience=Audience.CSM,
        explanation="usage -52% vs baseline",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        account=ACCOUNT,
        score_before=80,
        score_after=45,
    )
    base.update(kw)
    return RiskSignal(**base)


@pytest.mark.parametrize(
    ("existing", "sig", "expected"),
    [
        (None, signal(), (AlertState.OPEN, Notice.NEW)),
        (ExistingAlert(AlertState.OPEN, Severity.WARNING), signal(), None),  # dedup: open alert not resent
        (
            ExistingAlert(AlertState.ACKNOWLEDGED, Severity.WARNING),
            signal(severity=Severity.CRITICAL),
            (AlertState.ACKNOWLEDGED, Notice.ESCALATED),
        ),
        (
            ExistingAlert(AlertState.OPEN, Severity.CRITICAL),
            signal(recovered=True, severity=Severity.INFO),
            (AlertState.RESOLVED, Notice.RESOLVED),
        ),
        (None, signal(recovered=True, severity=Severity.INFO), None),
        (ExistingAlert(AlertState.RESOLVED, Severity.WARNING), signal(), (AlertState.OPEN, Notice.NEW)),
    ],
)
def test_lifecycle(existing: ExistingAlert | None, sig: RiskSignal, expected: tuple[AlertState, Notice] | None) -> None:
    d = decide(existing, sig)
    assert (None if d is None else (d.state, d.notice)) == expected


@pytest.mark.parametrize(
    ("audience", "emails"),
    [
        (Audience.CSM, ["ana@csm.example.com"]),
        (Audience.SUPPORT, ["help@example.com"]),
        (Audience.BOTH, ["ana@csm.example.com", "help@example.com"]),
    ],
)
def test_routing_by_audience(audience: Audience, emails: list[str]) -> None:
    dests = route_signal(signal(audience=audience), RoutingDefaults(slack_webhook_url="http://hook"))
    assert [d.target for d in dests if d.channel is Channel.EMAIL] == emails
    assert [d.target for d in dests if d.channel is Channel.SLACK] == ["http://hook"]


def test_slack_message_is_inert_and_has_fallback_text() -> None:
    msg = slack_message(signal(), Notice.NEW)
    flat = str(msg)
    assert "<!channel>" not in flat and "<script>" not in flat
    assert "&lt;!channel&gt;" in msg["text"]
    assert msg["text"]
    assert slack_escape("a & b") == "a &amp; b"


def test_email_html_is_escaped() -> None:
    mail = email_message(signal(), Notice.NEW)
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "\n" not in mail.subject
