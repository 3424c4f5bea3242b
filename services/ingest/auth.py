"""The one permission check, as a FastAPI dependency: a known, unrevoked key with the scope, within its rate.

401 when the key is missing or unknown, 403 when it lacks the scope, 429 with Retry-After past the rate.
The key itself is never logged: only its non-secret prefix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from services.ingest.apikeys import ApiKey, Scope, key_from_headers
from services.ingest.errors import IngestError
from services.ingest.keystore import KeyStore
from services.ingest.metrics import AUTH_FAILURES, RATE_LIMITED
from services.ingest.ratelimit import RateLimiter, retry_after_header
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a key's prefix, or ``anonymous`` when auth is off. ``scopes`` is what it may do."""

    name: str
    scopes: frozenset[Scope]

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            AUTH_FAILURES.labels("missing_scope").inc()
            raise IngestError(403, "forbidden", f"this API key does not have the {scope.value} scope")


ANONYMOUS = Caller("anonymous", frozenset(Scope))


def _unauthorized(reason: str, message: str) -> IngestError:
    AUTH_FAILURES.labels(reason).inc()
    return IngestError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer, Basic realm="churnwatch"'})


async def identify_caller(request: Request, settings: IngestSettings, keys: KeyStore) -> Caller:
    if not settings.auth_required:
        return ANONYMOUS
    secret_key = key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
    if secret_key is None:
        raise _unauthorized("missing_key", "an API key is required (Authorization: Bearer <key>, or Basic)")
    try:
        key: ApiKey | None = await keys.find(secret_key)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("API key lookup failed: %s", type(exc).__name__)
        raise IngestError(
            503, "auth_unavailable", "cannot check API keys now; retry", headers={"Retry-After": "5"}
        ) from None
    if key is None or not key.active:
        raise _unauthorized("unknown_key", "unknown or revoked API key")
    return Caller(f"key:{key.prefix}", key.scopes)


def requires(scope: Scope) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, who has ``scope`` and is within its rate limit."""

    async def dependency(request: Request) -> Caller:
        settings: IngestSettings = request.app.state.settings
        caller = await identify_caller(request, settings, request.app.state.keys)
        caller.require(scope)
        limiter: RateLimiter = request.app.state.rate_limiter
        bucket = caller.name if caller is not ANONYMOUS else f"ip:{request.client.host if request.client else '-'}"
        wait = limiter.acquire(bucket, time.monotonic())
        if wait > 0:
            RATE_LIMITED.inc()
            raise IngestError(
                429, "rate_limited", "too many requests for this key", headers={"Retry-After": retry_after_header(wait)}
            )
        request.state.caller = caller.name
        return caller

    return dependency
