"""Senders behind one small interface: Slack incoming webhooks, SMTP email, the console."""

from __future__ import annotations

import hashlib
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

import aiosmtplib
import httpx

from services.alerter.lifecycle import Notice
from services.alerter.messages import console_line, email_message, slack_message
from shared.signals import RiskSignal


class DeliveryError(Exception):
    """A send that did not happen. ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    async def send(self, target: str, signal: RiskSignal, notice: Notice) -> None: ...


class SlackWebhookNotifier:
    """Slack's incoming-webhook contract: 200 ok; 429 + Retry-After; 400 invalid_payload; 403/404/410 gone."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, target: str, signal: RiskSignal, notice: Notice) -> None:
        try:
            resp = await self._client.post(target, json=slack_message(signal, notice), timeout=10.0)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}", retryable=True) from exc
        if resp.status_code == 200:
            return
        detail = f"slack answered {resp.status_code}: {resp.text[:200]}"
        if resp.status_code == 429:
            raise DeliveryError(detail, retryable=True, retry_after=_retry_after(resp))
        if resp.status_code >= 500:
            raise DeliveryError(detail, retryable=True)
        raise DeliveryError(detail, retryable=False)


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


class SmtpNotifier:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password, self._use_tls = username, password, use_tls

    async def send(self, target: str, signal: RiskSignal, notice: Notice) -> None:
        built = email_message(signal, notice)
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = target
        msg["Subject"] = built.subject
        msg["Message-ID"] = make_msgid(domain="churnwatch.local")
        thread = f"<account-{hashlib.sha256(signal.account_id.encode()).hexdigest()[:24]}@churnwatch.local>"
        msg["References"] = thread  # threads every alert about one account together
        msg["In-Reply-To"] = thread
        msg.set_content(built.text)
        msg.add_alternative(built.html, subtype="html")
        try:
            await aiosmtplib.send(
                msg,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._use_tls,
                timeout=15,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc}", retryable=False) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp failed: {type(exc).__name__}: {exc}", retryable=True) from exc


class ConsoleNotifier:
    async def send(self, target: str, signal: RiskSignal, notice: Notice) -> None:
        print(console_line(signal, notice), file=sys.stdout, flush=True)
