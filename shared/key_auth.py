"""The one API-key check, for every service's router: a FastAPI dependency factory, ``require_scope``.

How a service opts in (in its app factory, once its engine exists)::

    app.state.key_auth = KeyAuth.for_service(settings, engine)      # settings: a KeyAuthSettings subclass
    app.include_router(router, dependencies=[Depends(require_scope(Scope.READ))])

A request presents a key as ``Authorization: Bearer <key>``, HTTP Basic with the key as user name, or
``X-API-Key``. 401 ``unauthorized``: no key, unknown or revoked key; 403 ``forbidden``: the key lacks the scope;
503 ``auth_unavailable`` + Retry-After: the key database cannot be asked and the key is not known to be valid
(see ``shared.key_cache`` for how long a valid key outlives a database outage). ``CHURNWATCH_SERVICE_TOKEN`` is a
second credential, for the console: presented the same way, it has the ``read`` scope only (a key made with
``churnwatch apikeys create --name console --scope read`` works as well, and can be revoked on its own).
``CHURNWATCH_AUTH_REQUIRED=false`` turns the check off (anyone is let in with every scope): a private sandbox only.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from prometheus_client import Counter
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.api_keys import Scope, key_from_headers
from shared.key_cache import CachePolicy
from shared.key_store import KeyStore, KeyStoreUnavailable

AUTH_REFUSED = Counter("churnwatch_auth_refused_total", "Requests refused by the API key check", ["reason"])
_SERVICE_SCOPES = frozenset({Scope.READ})


class KeyAuthSettings(BaseSettings):
    """The key check's settings; a service's settings class inherits it beside CommonSettings."""

    model_config = SettingsConfigDict(env_prefix="CHURNWATCH_", frozen=True, extra="ignore")

    auth_required: bool = True  # off only for a local sandbox; production keeps it on
    key_cache_seconds: float = Field(default=10.0, ge=0, description="how long a revoked key may still work")
    auth_stale_grace_seconds: float = Field(
        default=900.0,
        ge=0,
        description="while the key database is down, how long past its cache time a key known valid still works",
    )
    auth_db_retry_seconds: float = Field(default=1.0, gt=0, description="while it is down, ask it this often")
    auth_lookup_timeout_seconds: float = Field(default=2.0, gt=0)
    service_token: SecretStr | None = Field(default=None, description="the console's read credential (>= 32 chars)")

    def cache_policy(self) -> CachePolicy:
        return CachePolicy(self.key_cache_seconds, self.auth_stale_grace_seconds, self.auth_db_retry_seconds)


@dataclass(frozen=True)
class Caller:
    """Who is calling: ``key:<prefix>``, ``service`` or ``anonymous`` (auth off); what it may do."""

    name: str
    scopes: frozenset[Scope]


ANONYMOUS = Caller("anonymous", frozenset(Scope))
SERVICE = Caller("service", _SERVICE_SCOPES)


class KeyRefused(HTTPException):
    """A refused request: ``code`` is machine-readable, ``reason`` labels the metric. Renders with FastAPI's
    default handler as ``{"detail": {"code": ..., "message": ...}}``; a service with its own error body (ingest)
    converts it."""

    def __init__(self, status: int, code: str, message: str, reason: str, headers: dict[str, str]) -> None:
        super().__init__(status, {"code": code, "message": message}, headers)
        self.code, self.message, self.reason = code, message, reason


def _unauthorized(reason: str, message: str) -> KeyRefused:
    return KeyRefused(401, "unauthorized", message, reason, {"WWW-Authenticate": 'Bearer, Basic realm="churnwatch"'})


class KeyAuth:
    """Checks a request's key against the key store (or the service token). ``on_refused(reason)`` counts a
    refusal (default: ``churnwatch_auth_refused_total``)."""

    def __init__(
        self,
        settings: KeyAuthSettings,
        keys: KeyStore,
        *,
        retry_after_seconds: int = 5,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        token = settings.service_token.get_secret_value() if settings.service_token else None
        if token is not None and len(token) < 32:
            raise ValueError("CHURNWATCH_SERVICE_TOKEN must be at least 32 characters (e.g. openssl rand -hex 32)")
        self.required = settings.auth_required
        self.keys = keys
        self._service_token = token.encode() if token else None
        self._retry_after = str(retry_after_seconds)
        self._on_refused = on_refused or (lambda reason: AUTH_REFUSED.labels(reason).inc())

    @classmethod
    def for_service(cls, settings: KeyAuthSettings, engine: AsyncEngine, **options: Any) -> KeyAuth:
        store = KeyStore(engine, settings.cache_policy(), lookup_timeout=settings.auth_lookup_timeout_seconds)
        return cls(settings, store, **options)

    async def authenticate(self, request: Request, scope: Scope) -> Caller:
        """The caller, who has ``scope``; raises KeyRefused."""
        try:
            caller = await self._identify(request)
            if scope not in caller.scopes:
                raise KeyRefused(
                    403, "forbidden", f"this API key does not have the {scope.value} scope", "missing_scope", {}
                )
        except KeyRefused as refused:
            self._on_refused(refused.reason)
            raise
        return caller

    async def _identify(self, request: Request) -> Caller:
        if not self.required:
            return ANONYMOUS
        secret_key = key_from_headers(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if secret_key is None:
            raise _unauthorized("missing_key", "an API key is required (Authorization: Bearer <key>, or Basic)")
        if self._service_token is not None and hmac.compare_digest(secret_key.encode(), self._service_token):
            return SERVICE
        try:
            key = await self.keys.find(secret_key)
        except KeyStoreUnavailable:
            raise KeyRefused(
                503,
                "auth_unavailable",
                "cannot check API keys now; retry",
                "auth_unavailable",
                {"Retry-After": self._retry_after},
            ) from None
        if key is None or not key.active:
            raise _unauthorized("unknown_key", "unknown or revoked API key")
        return Caller(f"key:{key.prefix}", key.scopes)


def require_scope(scope: Scope) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, who has ``scope``, checked by the app's ``app.state.key_auth``."""

    async def dependency(request: Request) -> Caller:
        auth: KeyAuth | None = getattr(request.app.state, "key_auth", None)
        if auth is None:  # fail closed, loudly: a router asked for a check its app never set up
            raise RuntimeError("require_scope needs app.state.key_auth = KeyAuth.for_service(...) in the app factory")
        caller = await auth.authenticate(request, scope)
        request.state.caller = caller.name
        return caller

    return dependency
