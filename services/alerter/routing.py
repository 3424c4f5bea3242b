"""Where a signal goes. Pure: a signal (with its account snapshot) in, destinations out.

Proactive account risk goes to the account's CSM; reactive ticket trouble to the support team; both where both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.signals import Audience, RiskSignal


class Channel(StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    CONSOLE = "console"


@dataclass(frozen=True)
class Destination:
    channel: Channel
    target: str  # a webhook URL, an email address, or "stdout"
    route: str  # which route chose it: csm, support, default, console


@dataclass(frozen=True)
class RoutingDefaults:
    slack_webhook_url: str | None = None
    support_email: str | None = None
    fallback_email: str | None = None
    console: bool = False


def route_signal(signal: RiskSignal, defaults: RoutingDefaults) -> list[Destination]:
    out: list[Destination] = []
    account = signal.account
    if signal.audience in (Audience.CSM, Audience.BOTH):
        email = account.csm.email if account and account.csm else None
        if email:
            out.append(Destination(Channel.EMAIL, email, "csm"))
    if signal.audience in (Audience.SUPPORT, Audience.BOTH):
        email = (account.support_route.email if account and account.support_route else None) or defaults.support_email
        if email:
            out.append(Destination(Channel.EMAIL, email, "support"))
    if not any(d.channel is Channel.EMAIL for d in out) and defaults.fallback_email:
        out.append(Destination(Channel.EMAIL, defaults.fallback_email, "default"))
    if defaults.slack_webhook_url:
        out.append(Destination(Channel.SLACK, defaults.slack_webhook_url, "default"))
    if defaults.console:
        out.append(Destination(Channel.CONSOLE, "stdout", "console"))
    return _unique(out)


def _unique(destinations: list[Destination]) -> list[Destination]:
    seen: set[tuple[Channel, str]] = set()
    out = []
    for d in destinations:
        if (d.channel, d.target) not in seen:
            seen.add((d.channel, d.target))
            out.append(d)
    return out
