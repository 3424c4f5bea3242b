"""A real SMTP server (aiosmtpd) on a free local port, collecting what it receives.

``refuse`` makes it answer every message with a temporary failure (451), like a mail server that is down
for maintenance; clearing it lets the retries through.
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from services.demo.processes import free_port as free_port  # the tests import it from here


class _Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.refuse = False
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse:
                self.refused += 1
                return "451 4.3.0 Temporarily unavailable, try again later"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(msg)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def refuse(self) -> bool:
        return self._collector.refuse

    @refuse.setter
    def refuse(self, value: bool) -> None:
        with self._collector.lock:
            self._collector.refuse = value

    @property
    def refused(self) -> int:
        with self._collector.lock:
            return self._collector.refused

    def messages(self) -> list[EmailMessage]:
        with self._collector.lock:
            return list(self._collector.messages)
