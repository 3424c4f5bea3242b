"""A real HTTP server speaking Slack's incoming-webhook contract, for tests.

It answers 200 "ok" by default; tests can script the next answers (500, 429 with Retry-After, 404 ...).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedAnswer:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class SlackWebhookServer:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.script: deque[ScriptedAnswer] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with server._lock:
                    server.attempts += 1
                    answer = server.script.popleft() if server.script else None
                    if answer is None:
                        try:
                            payload = json.loads(raw)
                        except json.JSONDecodeError:
                            answer = ScriptedAnswer(400, "invalid_payload")
                        else:
                            if not isinstance(payload, dict) or not payload.get("text"):
                                answer = ScriptedAnswer(400, "no_text")
                            else:
                                server.received.append(payload)
                                answer = ScriptedAnswer(200, "ok")
                body = answer.body.encode()
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/services/T000/B000/XXXX"

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    def start(self) -> SlackWebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
