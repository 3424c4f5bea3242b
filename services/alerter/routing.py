"""Where a signal goes. Pure: a signal (with its account snapshot) and the routing rules in, destinations out.

Rules are tried in order like Alertmanager's routing tree: the first rule that matches decides, unless it says
``continue: true``, in which case the rules after it are tried too. When no rule matched, or the rules that
matched could not name one reachable destination (no CSM email, no webhook URL ...), the ``default`` route is
used. Proactive account risk goes to the account's CSM, reactive ticket trouble to the support team.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.alerter.lifecycle import InhibitPolicy
from shared.accounts import Contact, TouchTier
from shared.signals import Audience, RiskSignal, Severity, SignalType


class Channel(StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    WEBHOOK = "webhook"
    CONSOLE = "console"


ContactRole = Literal["csm", "support"]


@dataclass(frozen=True)
class Destination:
    channel: Channel
    target: str  # a webhook URL, an email address, or "stdout"
    route: str  # the name of the rule that chose it
    mention: str | None = None  # Slack user id or #channel to put in the message text
    digest: bool = False  # collect into the daily digest instead of sending now


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Rule):
    """Every given field must hold; a missing field matches anything."""

    signal_type: list[SignalType] | None = None
    severity: list[Severity] | None = None
    audience: list[Audience] | None = None
    tier: list[TouchTier] | None = None
    plan: list[str] | None = None
    arr_min: Annotated[float, Field(ge=0)] | None = None
    arr_max: Annotated[float, Field(ge=0)] | None = None

    def holds(self, signal: RiskSignal) -> bool:
        account = signal.account
        tier = account.touch_tier if account else TouchTier.LOW
        arr = account.arr if account else None
        checks = (
            self.signal_type is None or signal.signal_type in self.signal_type,
            self.severity is None or signal.severity in self.severity,
            self.audience is None or signal.audience in self.audience,
            self.tier is None or tier in self.tier,
            self.plan is None or (account is not None and account.plan in self.plan),
            self.arr_min is None or (arr is not None and arr >= self.arr_min),
            self.arr_max is None or (arr is not None and arr < self.arr_max),
        )
        return all(checks)


class Notify(_Rule):
    """One destination: exactly one of slack (a webhook name), email, webhook (a JSON webhook name)."""

    slack: str | None = None
    email: Annotated[str, Field(pattern=r"^(csm|support|fallback|[^@\s]+@[^@\s]+)$")] | None = None
    webhook: str | None = None
    mention: ContactRole | None = Field(default=None, description="whose Slack handle goes in the message")

    def model_post_init(self, _context: object) -> None:
        if sum(x is not None for x in (self.slack, self.email, self.webhook)) != 1:
            raise ValueError("a notify entry names exactly one of slack, email, webhook")


class Route(_Rule):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Annotated[str, Field(min_length=1, max_length=50)]
    match: Match = Match()
    notify: Annotated[list[Notify], Field(min_length=1)]
    digest: bool = Field(default=False, description="email destinations get the daily digest instead")
    continue_: bool = Field(default=False, alias="continue")


class DefaultRoute(_Rule):
    notify: Annotated[list[Notify], Field(min_length=1)]


class InhibitRule(_Rule):
    """An open or acknowledged critical alert holds back its account's other notices at these severities."""

    enabled: bool = True
    target_severity: Annotated[list[Severity], Field(min_length=1)] = [Severity.WARNING]

    def policy(self) -> InhibitPolicy:
        return InhibitPolicy(self.enabled, frozenset(self.target_severity))


class RoutingRules(_Rule):
    routes: list[Route] = Field(default_factory=list)
    default: DefaultRoute
    inhibit: InhibitRule = InhibitRule()
    playbooks: dict[SignalType, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class Addresses:
    """What the rules' names resolve to, from settings: webhook URLs and team addresses."""

    slack_webhooks: Mapping[str, str] = field(default_factory=dict)
    default_slack_webhook: str | None = None
    webhooks: Mapping[str, str] = field(default_factory=dict)
    support_email: str | None = None
    fallback_email: str | None = None
    email_enabled: bool = True
    digests_enabled: bool = True
    console: bool = False


def route_signal(signal: RiskSignal, rules: RoutingRules, addresses: Addresses) -> list[Destination]:
    out: list[Destination] = []
    for route in rules.routes:
        if not route.match.holds(signal):
            continue
        out += _resolve(route.name, route.notify, route.digest, signal, addresses)
        if not route.continue_:
            break
    if not out:
        out = _resolve("default", rules.default.notify, False, signal, addresses)
    if addresses.console:
        out.append(Destination(Channel.CONSOLE, "stdout", "console"))
    return _unique(out)


def _resolve(
    route: str, notify: list[Notify], digest: bool, signal: RiskSignal, addresses: Addresses
) -> list[Destination]:
    out: list[Destination] = []
    for n in notify:
        if n.slack is not None:
            url = addresses.slack_webhooks.get(n.slack) or addresses.default_slack_webhook
            if url:
                mention = _contact(signal, n.mention).slack if n.mention else None
                out.append(Destination(Channel.SLACK, url, route, mention=mention))
        elif n.webhook is not None:
            if url := addresses.webhooks.get(n.webhook):
                out.append(Destination(Channel.WEBHOOK, url, route))
        elif n.email is not None and addresses.email_enabled and (email := _email(signal, n.email, addresses)):
            out.append(Destination(Channel.EMAIL, email, route, digest=digest and addresses.digests_enabled))
    return out


def _contact(signal: RiskSignal, role: ContactRole) -> Contact:
    account = signal.account
    contact = (account.csm if role == "csm" else account.support_route) if account else None
    return contact or Contact()


def _email(signal: RiskSignal, name: str, addresses: Addresses) -> str | None:
    if name == "csm":
        return _contact(signal, "csm").email
    if name == "support":
        return _contact(signal, "support").email or addresses.support_email
    if name == "fallback":
        return addresses.fallback_email
    return name


def _unique(destinations: list[Destination]) -> list[Destination]:
    seen: set[tuple[Channel, str]] = set()
    out = []
    for d in destinations:
        if (d.channel, d.target) not in seen:
            seen.add((d.channel, d.target))
            out.append(d)
    return out
