"""Per-request observability: a request id on every response and log line, latency by route, one log line per
request that went wrong. Only a key's non-secret prefix ever reaches a log.

Refusals that come from a state (429 rate limited, 503 Kafka / key database unavailable, overloaded) are not logged
one line per request (an outage wrote ~45,000 lines): they are counted in the metrics, and the state itself is
logged once when it changes, with a reminder a minute (shared.state_log)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from services.ingest.metrics import REQUEST_SECONDS

log = logging.getLogger("churnwatch.ingest.requests")

_STATE_REFUSALS = frozenset({429, 503})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one (never echo arbitrary input)."""
    return header if header and _SAFE_ID.match(header) else uuid.uuid4().hex


def install_request_logging(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request_id_from(request.headers.get("x-request-id"))
        request.state.request_id = request_id
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(request.scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(route, str(status)).observe(elapsed)
            if (status >= 400 and status not in _STATE_REFUSALS) or log.isEnabledFor(logging.DEBUG):
                log.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    json.dumps(
                        {
                            "request_id": request_id,
                            "method": request.method,
                            "route": route,
                            "status": status,
                            "ms": round(elapsed * 1000, 1),
                            "caller": getattr(request.state, "caller", None),
                        }
                    ),
                )
