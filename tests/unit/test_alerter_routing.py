"""The routing table over every signal type, tier, audience and severity, and rules files that must fail."""

from datetime import UTC, datetime

import pytest

from services.alerter.routing import Addresses, Channel, Destination, route_signal
from services.alerter.routing_config import RoutingConfigError, load_rules, parse_rules
from shared.accounts import AccountProfile, Contact, TouchTier
from shared.signals import Audience, RiskSignal, Severity, SignalType

RULES = load_rules(None)  # the packaged routing.yaml
ADDRESSES = Addresses(
    slack_webhooks={"csm": "http://h/csm", "support": "http://h/support", "escalation": "http://h/esc"},
    default_slack_webhook="http://h/default",
    support_email="team@support.example.com",
    fallback_email="fallback@example.com",
)


def signal(signal_type: SignalType, tier: TouchTier, audience: Audience, severity: Severity, arr: float) -> RiskSignal:
    return RiskSignal(
        signal_id="s",
        account_id="a1",
        signal_type=signal_type,
        severity=severity,
        audience=audience,
        explanation="x",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        account=AccountProfile(
            account_id="a1",
            name="Acme",
            arr=arr,
            touch_tier=tier,
            csm=Contact(email="ana@example.com", slack="U0ANA"),
            support_route=Contact(email="help@example.com", slack="C0SUP"),
        ),
    )


def expected(tier: TouchTier, audience: Audience, severity: Severity, arr: float) -> set[tuple[str, str, str]]:
    """The routing policy in words: escalation for big critical accounts, tickets to support, risk to the CSM,
    and tech-touch risk to the CSM's daily digest instead of Slack; data problems to operators only (no `ops`
    webhook is configured here, so Slack's default one)."""
    out: set[tuple[str, str, str]] = set()
    if audience is Audience.OPS:
        return {("data-quality", "slack", "http://h/default"), ("data-quality", "email", "fallback@example.com")}
    if severity is Severity.CRITICAL and arr >= 100_000:
        out.add(("escalation", "slack", "http://h/esc"))
    if audience in (Audience.SUPPORT, Audience.BOTH):
        out |= {("support", "slack", "http://h/support"), ("support", "email", "help@example.com")}
    if audience in (Audience.CSM, Audience.BOTH):
        if tier is TouchTier.TECH:
            out.add(("tech-touch", "email+digest", "ana@example.com"))
        else:
            out |= {("csm", "slack", "http://h/csm"), ("csm", "email", "ana@example.com")}
    return out


def as_set(dests: list[Destination]) -> set[tuple[str, str, str]]:
    return {(d.route, d.channel.value + ("+digest" if d.digest else ""), d.target) for d in dests}


@pytest.mark.parametrize("tier", list(TouchTier))
@pytest.mark.parametrize("signal_type", list(SignalType))
def test_routing_table(signal_type: SignalType, tier: TouchTier) -> None:
    for audience in Audience:
        for severity in Severity:
            for arr in (20_000.0, 100_000.0, 250_000.0):
                dests = route_signal(signal(signal_type, tier, audience, severity, arr), RULES, ADDRESSES)
                assert as_set(dests) == expected(tier, audience, severity, arr), (audience, severity, arr)


def test_mentions_follow_the_rule() -> None:
    dests = route_signal(
        signal(SignalType.TICKET_SPIKE, TouchTier.HIGH, Audience.BOTH, Severity.CRITICAL, 5e5), RULES, ADDRESSES
    )
    mentions = {d.route: d.mention for d in dests if d.channel is Channel.SLACK}
    assert mentions == {"escalation": "U0ANA", "support": "C0SUP", "csm": "U0ANA"}


def test_unreachable_rules_fall_to_the_default_route() -> None:
    s = signal(SignalType.USAGE_DROP, TouchTier.TECH, Audience.CSM, Severity.WARNING, 0)
    assert s.account is not None
    no_csm = s.model_copy(update={"account": s.account.model_copy(update={"csm": None})})
    assert as_set(route_signal(no_csm, RULES, ADDRESSES)) == {
        ("default", "slack", "http://h/default"),
        ("default", "email", "fallback@example.com"),
    }
    bare = s.model_copy(update={"account": None})  # no profile: the CSM channel, nobody to mention
    assert as_set(route_signal(bare, RULES, ADDRESSES)) == {("csm", "slack", "http://h/csm")}


def test_support_email_falls_back_to_the_team_address_and_one_webhook_serves_all_names() -> None:
    s = signal(SignalType.TICKET_SPIKE, TouchTier.LOW, Audience.SUPPORT, Severity.WARNING, 0)
    assert s.account is not None
    s = s.model_copy(update={"account": s.account.model_copy(update={"support_route": None})})
    only_default = Addresses(default_slack_webhook="http://h/one", support_email="team@support.example.com")
    assert as_set(route_signal(s, RULES, only_default)) == {
        ("support", "slack", "http://h/one"),
        ("support", "email", "team@support.example.com"),
    }


def test_email_disabled_and_console() -> None:
    s = signal(SignalType.USAGE_DROP, TouchTier.HIGH, Audience.CSM, Severity.WARNING, 0)
    dests = route_signal(s, RULES, Addresses(email_enabled=False, console=True))
    assert as_set(dests) == {("console", "console", "stdout")}


def test_digests_can_be_switched_off() -> None:
    s = signal(SignalType.USAGE_DROP, TouchTier.TECH, Audience.CSM, Severity.WARNING, 0)
    dests = route_signal(s, RULES, Addresses(digests_enabled=False))
    assert as_set(dests) == {("tech-touch", "email", "ana@example.com")}


def test_plan_arr_and_continue() -> None:
    rules = parse_rules(
        """
routes:
  - name: enterprise
    match: {plan: [enterprise], arr_min: 1000, arr_max: 5000}
    continue: true
    notify: [{webhook: crm}]
  - name: all
    notify: [{email: ops@example.com}]
default:
  notify: [{email: fallback}]
"""
    )
    addresses = Addresses(webhooks={"crm": "http://crm/hook"})
    s = signal(SignalType.USAGE_DROP, TouchTier.HIGH, Audience.CSM, Severity.WARNING, 2000)
    assert s.account is not None
    ent = s.model_copy(update={"account": s.account.model_copy(update={"plan": "enterprise"})})
    assert as_set(route_signal(ent, rules, addresses)) == {
        ("enterprise", "webhook", "http://crm/hook"),
        ("all", "email", "ops@example.com"),
    }
    assert as_set(route_signal(s, rules, addresses)) == {("all", "email", "ops@example.com")}


GOOD_TAIL = "default:\n  notify:\n    - {slack: default}\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("routes:\n  - name: a\n    notify: [{slack: x}]\n    match:\n      tier: [huge]\n" + GOOD_TAIL, 5, "tier"),
        ("routes:\n  - name: a\n    notify: [{slack: x}]\n    matchh: {}\n" + GOOD_TAIL, 4, "matchh"),
        ("routes:\n  - name: a\n    notify:\n      - {slack: x, email: csm}\n" + GOOD_TAIL, 4, "exactly one"),
        ("routes:\n  - name: a\n    notify: [{email: not-an-address}]\n" + GOOD_TAIL, 3, "email"),
        ("routes:\n  - name: a\n    notify: [{slack: x}]\n", 1, "default"),
        ("routes:\n  - name: a\n    notify: [{slack: x}\n" + GOOD_TAIL, 4, "YAML"),
        ("playbooks:\n  usage_drops: hi\n" + GOOD_TAIL, 2, "usage_drops"),
    ],
)
def test_bad_rules_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(RoutingConfigError) as err:
        parse_rules(text, "rules.yaml")
    assert str(err.value).startswith(f"rules.yaml:{line}:"), str(err.value)
    assert words in str(err.value)


def test_the_packaged_rules_have_a_playbook_for_every_signal_type() -> None:
    assert set(RULES.playbooks) == set(SignalType)
