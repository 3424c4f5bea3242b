"""Ingest's permission check: the shared key check (``shared.key_auth``), then the per-key rate limit.

401 when the key is missing or unknown, 403 when it lacks the scope, 503 ``auth_unavailable`` when the key
database cannot be asked and the key is not known valid, 429 with Retry-After past the rate. Errors keep ingest's
body (``{"error": {"code", "message", "fields"}}``). The key itself is never logged: only its non-secret prefix.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request

from services.ingest.errors import IngestError
from services.ingest.metrics import AUTH_FAILURES, RATE_LIMITED
from services.ingest.ratelimit import RateLimiter, retry_after_header
from services.ingest.settings import IngestSettings
from shared.api_keys import Scope
from shared.key_auth import ANONYMOUS, Caller, KeyAuth, KeyRefused
from shared.key_store import KeyStore

__all__ = ["ANONYMOUS", "Caller", "build_key_auth", "requires"]


def build_key_auth(settings: IngestSettings, keys: KeyStore) -> KeyAuth:
    return KeyAuth(
        settings,
        keys,
        retry_after_seconds=settings.unavailable_retry_after_seconds,
        on_refused=lambda reason: AUTH_FAILURES.labels(reason).inc(),
    )


def requires(scope: Scope) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, who has ``scope`` and is within its rate limit."""

    async def dependency(request: Request) -> Caller:
        auth: KeyAuth = request.app.state.key_auth
        try:
            caller = await auth.authenticate(request, scope)
        except KeyRefused as refused:
            headers = dict(refused.headers or {})
            raise IngestError(refused.status_code, refused.code, refused.message, headers=headers) from None
        settings: IngestSettings = request.app.state.settings
        limiter: RateLimiter = request.app.state.rate_limiter
        bucket = caller.name if caller is not ANONYMOUS else f"ip:{request.client.host if request.client else '-'}"
        wait = limiter.acquire(bucket, time.monotonic())
        if wait > 0:
            RATE_LIMITED.inc()
            retry_after = {"Retry-After": retry_after_header(min(wait, settings.max_retry_after_seconds))}
            raise IngestError(429, "rate_limited", "too many requests for this key", headers=retry_after)
        request.state.caller = caller.name
        return caller

    return dependency
