"""The alerter's pure core: lifecycle, messages (escaping), links, retry policy."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.alerter.lifecycle import (
    Action,
    AlertState,
    ExistingAlert,
    Notice,
    TransitionRefused,
    apply_action,
    decide,
    digest_due,
    on_timer,
)
from services.alerter.links import LinkSigner, link_signature, link_valid
from services.alerter.messages import AlertNotice, digest_email, email_message, slack_escape, slack_message
from services.alerter.notifiers import SmtpConfig, SmtpNotifier
from services.alerter.outgoing import DeliveryError, Outgoing, RetryPolicy, webhook_signature
from shared.accounts import AccountProfile, Contact
from shared.signals import Audience, RiskSignal, Severity, SignalType

HOSTILE = "*bold* <!channel> <script>alert(1)</script> & <@U123>"
ACCOUNT = AccountProfile(
    account_id="a1",
    name=HOSTILE,
    csm=Contact(name="Ana", email="ana@csm.example.com", slack="U0ANA"),
    support_route=Contact(email="help@example.com"),
)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def signal(**kw: object) -> RiskSignal:
    base: dict[str, object] = dict(
        signal_id="s1",
        account_id="a1",
        signal_type=SignalType.USAGE_DROP,
        severity=Severity.WARNING,
        audience=Audience.CSM,
        explanation=f"usage -52% vs baseline {HOSTILE}",
        occurred_at=T0,
        account=ACCOUNT,
        score_before=80,
        score_after=45,
        band_before="green",
        band_after="yellow",
        evidence={"usage_ratio": 0.48},
    )
    base.update(kw)
    return RiskSignal(**base)


@pytest.mark.parametrize(
    ("existing", "sig", "expected"),
    [
        (None, signal(), (AlertState.OPEN, Notice.NEW)),
        (ExistingAlert(AlertState.OPEN, Severity.WARNING), signal(), None),  # dedup: open alert not resent
        (ExistingAlert(AlertState.OPEN, Severity.CRITICAL), signal(), None),  # lower severity: nothing
        (ExistingAlert(AlertState.OPEN, Severity.WARNING), signal(severity=Severity.CRITICAL), ("open", "escalated")),
        (
            ExistingAlert(AlertState.ACKNOWLEDGED, Severity.WARNING),
            signal(severity=Severity.CRITICAL),
            (AlertState.ACKNOWLEDGED, Notice.ESCALATED),
        ),
        (ExistingAlert(AlertState.SNOOZED, Severity.WARNING), signal(), None),
        (ExistingAlert(AlertState.SNOOZED, Severity.INFO), signal(), (AlertState.OPEN, Notice.ESCALATED)),
        (
            ExistingAlert(AlertState.OPEN, Severity.CRITICAL),
            signal(recovered=True, severity=Severity.INFO),
            (AlertState.RESOLVED, Notice.RESOLVED),
        ),
        (None, signal(recovered=True, severity=Severity.INFO), None),
        (ExistingAlert(AlertState.RESOLVED, Severity.WARNING), signal(recovered=True), None),
        (ExistingAlert(AlertState.RESOLVED, Severity.WARNING), signal(), (AlertState.OPEN, Notice.NEW)),
    ],
)
def test_lifecycle(existing: ExistingAlert | None, sig: RiskSignal, expected: tuple[str, str] | None) -> None:
    d = decide(existing, sig)
    assert (None if d is None else (d.state, d.notice)) == expected


@pytest.mark.parametrize(
    ("existing", "now", "expected"),
    [
        (ExistingAlert(AlertState.OPEN, Severity.WARNING, T0), T0 + 3 * HOUR, None),
        (ExistingAlert(AlertState.OPEN, Severity.WARNING, T0), T0 + 4 * HOUR, (AlertState.OPEN, Notice.REMINDER)),
        (ExistingAlert(AlertState.ACKNOWLEDGED, Severity.WARNING, T0), T0 + 9 * HOUR, None),  # acked: no reminder
        (ExistingAlert(AlertState.RESOLVED, Severity.WARNING, T0), T0 + 9 * HOUR, None),
        (ExistingAlert(AlertState.SNOOZED, Severity.WARNING, T0, T0 + 8 * HOUR), T0 + 7 * HOUR, None),
        (
            ExistingAlert(AlertState.SNOOZED, Severity.WARNING, T0, T0 + 8 * HOUR),
            T0 + 8 * HOUR,
            (AlertState.OPEN, Notice.REMINDER),
        ),
    ],
)
def test_timers(existing: ExistingAlert, now: datetime, expected: tuple[str, str] | None) -> None:
    d = on_timer(existing, now, 4 * HOUR)
    assert (None if d is None else (d.state, d.notice)) == expected


def test_no_repeat_interval_means_no_reminders() -> None:
    assert on_timer(ExistingAlert(AlertState.OPEN, Severity.WARNING, T0), T0 + 100 * HOUR, None) is None


def test_actions() -> None:
    assert apply_action(AlertState.OPEN, Action.ACK) is AlertState.ACKNOWLEDGED
    assert apply_action(AlertState.ACKNOWLEDGED, Action.SNOOZE) is AlertState.SNOOZED
    assert apply_action(AlertState.SNOOZED, Action.RESOLVE) is AlertState.RESOLVED
    assert apply_action(AlertState.RESOLVED, Action.RESOLVE) is AlertState.RESOLVED
    with pytest.raises(TransitionRefused):
        apply_action(AlertState.RESOLVED, Action.ACK)


def test_digest_goes_out_at_the_start_of_the_next_period() -> None:
    day, eight = timedelta(days=1), timedelta(hours=8)
    first = T0 + timedelta(hours=9)  # 09:00, after today's 08:00 digest
    assert not digest_due(first, T0 + timedelta(hours=23), day, eight)
    assert not digest_due(first, T0 + timedelta(days=1, hours=7, minutes=59), day, eight)
    assert digest_due(first, T0 + timedelta(days=1, hours=8), day, eight)


def test_signed_links_expire_and_bind_alert_and_action() -> None:
    signer = LinkSigner("https://cw.example.com/", "s" * 32, timedelta(days=7))
    url = signer.url(42, Action.ACK, T0)
    assert url.startswith("https://cw.example.com/v1/alerts/42/ack?exp=")
    exp = int((T0 + timedelta(days=7)).timestamp())
    sig = link_signature("s" * 32, 42, Action.ACK, exp)
    assert f"sig={sig}" in url
    assert link_valid("s" * 32, 42, Action.ACK, exp, sig, T0)
    assert not link_valid("s" * 32, 42, Action.ACK, exp, sig, T0 + timedelta(days=8))  # expired
    assert not link_valid("s" * 32, 43, Action.ACK, exp, sig, T0)  # another alert
    assert not link_valid("s" * 32, 42, Action.SNOOZE, exp, sig, T0)  # another action
    assert not link_valid("t" * 32, 42, Action.ACK, exp, sig, T0)  # another secret


def notice(**kw: object) -> AlertNotice:
    base: dict[str, object] = dict(
        signal=signal(),
        notice=Notice.NEW,
        alert_id=7,
        mention="U0ANA",
        playbook="Book a usage review",
        links={Action.ACK: "https://cw/ack?sig=1", Action.SNOOZE: "https://cw/snooze?sig=2"},
        account_url="https://crm/a1",
    )
    base.update(kw)
    return AlertNotice(**base)  # type: ignore[arg-type]


def test_slack_message_is_inert_and_complete() -> None:
    msg = slack_message(notice())
    flat = str(msg)
    assert "<!channel>" not in flat and "<script>" not in flat and "<@U123>" not in flat
    assert "&lt;!channel&gt;" in msg["text"]
    assert msg["text"].startswith("<@U0ANA>")  # the CSM is pinged through a well-formed id only
    assert "*bold*" not in msg["text"].replace(slack_escape(HOSTILE), "")
    for block in msg["blocks"]:
        text = block.get("text") or {}
        if HOSTILE.split()[0] in str(text):
            assert text["type"] == "plain_text"  # hostile text never rendered as mrkdwn
    assert "Book a usage review" in flat and "45 (-35)" in flat and "green → yellow" in flat
    assert "<https://cw/ack?sig=1|Acknowledge>" in flat and "<https://crm/a1|Open account>" in flat
    assert slack_escape("a & b") == "a &amp; b"


def test_slack_mention_refuses_free_text_pings() -> None:
    msg = slack_message(notice(mention="<!channel>"))
    assert "<!channel>" not in str(msg)


def test_resolved_notice_is_short_and_has_no_action_links() -> None:
    msg = slack_message(notice(notice=Notice.RESOLVED))
    assert msg["text"].endswith(slack_escape(f"Resolved: usage drop on {HOSTILE} (a1)"))
    assert "Acknowledge" not in str(msg)


def test_email_is_escaped_and_threaded_per_account() -> None:
    mail = email_message(notice())
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "\n" not in mail.subject
    assert 'href="https://cw/ack?sig=1"' in mail.html and "Book a usage review" in mail.text
    smtp = SmtpNotifier(SmtpConfig("127.0.0.1", 25, "cw@example.com"))
    one = smtp.build(Outgoing(1, "ana@csm.example.com", (notice(),)))
    two = smtp.build(Outgoing(2, "ana@csm.example.com", (notice(),)))
    assert one["References"] == two["References"] and one["Message-ID"] != two["Message-ID"]
    again = smtp.build(Outgoing(1, "ana@csm.example.com", (notice(),)))
    assert again["Message-ID"] == one["Message-ID"]  # a resend after a crash is recognisable
    assert one.is_multipart()


def test_digest_email_lists_every_notice() -> None:
    other = signal(account_id="a2", signal_id="s2")
    mail = digest_email([notice(), notice(signal=other)], "up to 2026-11-02")
    assert "2 alert notices on 2 accounts" in mail.subject
    assert mail.html.count("<h3>") == 2 and "<script>" not in mail.html


def test_webhook_signature_is_hmac_over_timestamp_and_body() -> None:
    sig = webhook_signature("k" * 20, 1700000000, b'{"a":1}')
    assert sig.startswith("sha256=") and len(sig) == 71
    assert sig != webhook_signature("k" * 20, 1700000001, b'{"a":1}')


def test_retry_policy_backs_off_honours_retry_after_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1, cap_seconds=10)
    rng = random.Random(1)
    assert all(0 <= policy.delay(a, None, rng) <= min(10, 2 ** (a - 1)) for a in range(1, 10) for _ in range(20))
    assert policy.delay(1, 30.0, rng) == 30.0
    retry = policy.outcome(1, DeliveryError("429", retryable=True, retry_after=5), T0, rng)
    assert retry["status"] == "pending" and retry["next_attempt_at"] >= T0 + timedelta(seconds=5)
    assert policy.outcome(3, DeliveryError("500", retryable=True), T0, rng)["status"] == "dead"
    assert policy.outcome(1, DeliveryError("410 gone", retryable=False), T0, rng)["status"] == "dead"


def test_retry_policy_outlasts_an_outage_longer_than_its_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1, cap_seconds=10, max_age_seconds=3600)
    rng, down = random.Random(1), DeliveryError("503", retryable=True)
    queued = T0 - timedelta(minutes=30)
    assert policy.outcome(20, down, T0, rng, created_at=queued)["status"] == "pending"  # many tries, not old yet
    assert policy.outcome(20, down, T0, rng, created_at=T0 - timedelta(hours=1))["status"] == "dead"
    assert policy.outcome(2, down, T0, rng, created_at=T0 - timedelta(days=2))["status"] == "pending"  # 2 < 3 tries
    assert policy.outcome(1, DeliveryError("404", retryable=False), T0, rng, created_at=T0)["status"] == "dead"
