"""A real HTTP server speaking Slack's incoming-webhook contract, for tests.

It answers 200 "ok" by default. Tests can script the next answers (500, 429 with Retry-After, 404 ...),
make it fail every request for a while (``down``), or hold each response for some seconds after it has
accepted the message (``hold_seconds``: the message counts as received, the sender waits; a crash of the
sender then lands mid-delivery). Each webhook URL path is one "channel"; other JSON posts (signed
webhooks) are kept with their headers. With ``rate_limit_seconds`` set it enforces Slack's rate limit: a
message that arrives sooner than that after the last accepted one on the same path gets 429 + Retry-After 1
(counted in ``rate_limited``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedAnswer:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    payload: dict[str, Any]
    headers: dict[str, str]
    raw: bytes
    at: float  # time.time() when it arrived


class SlackWebhookServer:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.attempts = 0
        self.script: deque[ScriptedAnswer] = deque()
        self.down: ScriptedAnswer | None = None  # while set, every request gets this answer
        self.hold_seconds = 0.0
        self.rate_limit_seconds = 0.0
        self.rate_limited = 0
        self._last_accepted: dict[str, float] = {}  # path -> time.monotonic() of the last accepted message
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                answer = server._answer(self.path, dict(self.headers.items()), raw)
                if answer.status == 200 and server.hold_seconds:
                    time.sleep(server.hold_seconds)
                body = answer.body.encode()
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    return  # the sender went away mid-response (killed): the message still counts

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> ScriptedAnswer:
        with self._lock:
            self.attempts += 1
            if self.down is not None:
                return self.down
            if self.script:
                return self.script.popleft()
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                return ScriptedAnswer(400, "invalid_payload")
            if not isinstance(payload, dict):
                return ScriptedAnswer(400, "invalid_payload")
            is_slack = path.startswith("/services/")
            if is_slack and not payload.get("text"):
                return ScriptedAnswer(400, "no_text")
            now = time.monotonic()
            if self.rate_limit_seconds and now - self._last_accepted.get(path, -1e9) < self.rate_limit_seconds:
                self.rate_limited += 1
                return ScriptedAnswer(429, "rate_limited", {"Retry-After": "1"})
            self._last_accepted[path] = now
            self.received.append(Received(path, payload, headers, raw, time.time()))
            return ScriptedAnswer(200, "ok")

    @property
    def url(self) -> str:
        return self.url_for("XXXX")

    def url_for(self, channel: str) -> str:
        """The incoming-webhook URL of one channel (Slack binds a webhook to one channel)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/services/T000/B000/{channel}"

    def hook_url(self, name: str) -> str:
        """A generic JSON webhook endpoint (not Slack)."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/hooks/{name}"

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [r.payload for r in self.requests(channel)]

    def requests(self, channel: str | None = None) -> list[Received]:
        with self._lock:
            if channel is None:
                return [r for r in self.received if r.path.startswith("/services/")]
            return [r for r in self.received if r.path.endswith(f"/{channel}")]

    def start(self) -> SlackWebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
