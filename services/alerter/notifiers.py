"""Senders behind one small interface: Slack incoming webhooks, SMTP email, a signed JSON webhook, the console.

A new channel is a sender here and its line in ``notifiers_for``, its ``Channel`` and ``Notify`` entry in
routing.py, its address or secret in settings.py and its payload in messages.py."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx

from services.alerter.group_messages import group_email, group_headline, slack_group_message
from services.alerter.messages import (
    console_line,
    digest_email,
    email_message,
    slack_message,
    webhook_body,
)
from services.alerter.outgoing import DeliveryError as DeliveryError  # re-exported: the senders' error
from services.alerter.outgoing import Outgoing as Outgoing
from services.alerter.outgoing import webhook_signature as webhook_signature
from services.alerter.routing import Channel
from services.alerter.settings import AlerterSettings


class Notifier(Protocol):
    async def send(self, out: Outgoing) -> None: ...


def _http_outcome(resp: httpx.Response, what: str) -> None:
    """Slack's contract: 200 ok; 429 + Retry-After; 5xx try again; 400 invalid_payload, 403/404/410 gone."""
    if 200 <= resp.status_code < 300:
        return
    detail = f"{what} answered {resp.status_code}: {resp.text[:200]}"
    if resp.status_code == 429:
        raise DeliveryError(detail, retryable=True, retry_after=_retry_after(resp))
    if resp.status_code >= 500 or resp.status_code == 408:
        raise DeliveryError(detail, retryable=True)
    raise DeliveryError(detail, retryable=False)


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


class SlackWebhookNotifier:
    def __init__(self, client: httpx.AsyncClient, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout

    async def send(self, out: Outgoing) -> None:
        try:
            body = slack_group_message(out.notices, out.group_links) if out.grouped else slack_message(out.first)
            resp = await self._client.post(out.target, json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}", retryable=True) from exc
        _http_outcome(resp, "slack")


class JsonWebhookNotifier:
    """A generic HMAC-signed JSON webhook; X-Churnwatch-Delivery lets a receiver drop the rare resend."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    async def send(self, out: Outgoing) -> None:
        body = json.dumps(webhook_body(out.first), separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Churnwatch-Timestamp": str(ts),
            "X-Churnwatch-Signature": webhook_signature(self._secret, ts, body),
            "X-Churnwatch-Delivery": str(out.delivery_id),
        }
        try:
            resp = await self._client.post(out.target, content=body, headers=headers, timeout=10.0)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {type(exc).__name__}", retryable=True) from exc
        _http_outcome(resp, "webhook")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 15.0


class SmtpNotifier:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._domain = config.sender.rpartition("@")[2] or "churnwatch.local"

    def build(self, out: Outgoing) -> EmailMessage:
        if out.digest_period:
            built = digest_email(out.notices, out.digest_period)
        else:
            built = group_email(out.notices, out.group_links) if out.grouped else email_message(out.first)
        msg = EmailMessage()
        msg["From"] = self._config.sender
        msg["To"] = out.target
        msg["Subject"] = built.subject
        # Derived from the outbox row: the one resend a crash can cause carries the same Message-ID,
        # so mail systems that deduplicate on it show one message.
        msg["Message-ID"] = f"<delivery-{out.delivery_id}-{_short_hash(out.target)}@{self._domain}>"
        if not out.digest_period:
            thread = f"<account-{_short_hash(out.first.signal.account_id)}@{self._domain}>"
            msg["References"] = thread  # threads every alert about one account together
            msg["In-Reply-To"] = thread
        msg.set_content(built.text)
        msg.add_alternative(built.html, subtype="html")
        return msg

    async def send(self, out: Outgoing) -> None:
        c = self._config
        try:
            await aiosmtplib.send(
                self.build(out),
                hostname=c.host,
                port=c.port,
                username=c.username,
                password=c.password,
                start_tls=c.starttls,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", retryable=False) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp failed: {type(exc).__name__}: {exc}", retryable=True) from exc


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ConsoleNotifier:
    async def send(self, out: Outgoing) -> None:
        if out.grouped:  # one account's group: its headline, then each notice indented under it
            lines = [f"ALERT {group_headline(out.notices)}", *(f"  {console_line(n)}" for n in out.notices)]
        else:
            lines = [console_line(n) for n in out.notices]
        print("\n".join(lines), file=sys.stdout, flush=True)


def notifiers_for(settings: AlerterSettings, http: httpx.AsyncClient) -> dict[Channel, Notifier]:
    """One sender per channel, configured from settings."""
    smtp = SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.email_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )
    return {
        Channel.SLACK: SlackWebhookNotifier(http),
        Channel.EMAIL: SmtpNotifier(smtp),
        Channel.WEBHOOK: JsonWebhookNotifier(http, settings.webhook_secret or ""),
        Channel.CONSOLE: ConsoleNotifier(),
    }
