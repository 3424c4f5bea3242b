"""Signed one-click links for acknowledging or snoozing an alert from a message, so no Slack app is needed.

A link carries the alert id, the action and an expiry, signed with HMAC-SHA256 under the link secret:
anyone holding the link may perform that one action on that one alert until it expires, and nothing else.
Pure: time is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from services.alerter.lifecycle import Action

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "xxx"})


def link_signature(secret: str, alert_id: int, action: Action, expires: int) -> str:
    message = f"{alert_id}\x1f{action.value}\x1f{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def group_link_signature(secret: str, alert_ids: Sequence[int], action: Action, expires: int) -> str:
    """A group link acts on exactly these alerts; "group" in the message keeps it apart from a one-alert link."""
    ids = ",".join(str(i) for i in alert_ids)
    message = f"group\x1f{ids}\x1f{action.value}\x1f{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def group_link_valid(
    secret: str, alert_ids: Sequence[int], action: Action, expires: int, signature: str, now: datetime
) -> bool:
    if now.timestamp() > expires:
        return False
    return hmac.compare_digest(group_link_signature(secret, alert_ids, action, expires), signature)


def link_valid(secret: str, alert_id: int, action: Action, expires: int, signature: str, now: datetime) -> bool:
    if now.timestamp() > expires:
        return False
    return hmac.compare_digest(link_signature(secret, alert_id, action, expires), signature)


@dataclass(frozen=True)
class LinkSigner:
    public_url: str
    secret: str
    ttl: timedelta

    def url(self, alert_id: int, action: Action, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        query = urlencode({"exp": expires, "sig": link_signature(self.secret, alert_id, action, expires)})
        return f"{self.public_url.rstrip('/')}/v1/alerts/{alert_id}/{action.value}?{query}"

    def action_links(self, alert_id: int, now: datetime) -> dict[Action, str]:
        return {a: self.url(alert_id, a, now) for a in (Action.ACK, Action.SNOOZE)}

    def group_url(self, alert_ids: Sequence[int], action: Action, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        sig = group_link_signature(self.secret, alert_ids, action, expires)
        ids = ",".join(str(i) for i in alert_ids)
        query = urlencode({"exp": expires, "sig": sig})
        return f"{self.public_url.rstrip('/')}/v1/alert-groups/{ids}/{action.value}?{query}"

    def group_links(self, alert_ids: Sequence[int], now: datetime) -> dict[Action, str]:
        """Links that acknowledge or snooze every alert of a grouped message at once."""
        return {a: self.group_url(alert_ids, a, now) for a in (Action.ACK, Action.SNOOZE)}
