"""API keys, pure: how a key looks, how it is hashed, which scopes exist, how a request presents one.

Shared by every service that checks keys (ingest writes, every read API reads).

A key is ``cw_<prefix>_<secret>``: the prefix is not secret (it names the key in listings and logs), the secret
has 256 bits of entropy, so a plain SHA-256 of the whole key is a safe and fast thing to store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Scope(StrEnum):
    WRITE_EVENTS = "events:write"
    WRITE_ACCOUNTS = "accounts:write"
    READ = "read"


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret_key: str  # shown once to whoever created it, never stored
    key_hash: str


@dataclass(frozen=True)
class ApiKey:
    prefix: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def generate_key() -> NewKey:
    prefix = secrets.token_hex(4)
    secret_key = f"cw_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, secret_key=secret_key, key_hash=hash_key(secret_key))


def hash_key(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    """Raises ValueError naming the unknown scope."""
    known = {s.value: s for s in Scope}
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(known)}")
    return frozenset(known[v] for v in values)


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>``, HTTP Basic with the key as user name
    (what Segment and RudderStack SDKs send), or ``X-API-Key``."""
    if x_api_key:
        return x_api_key.strip() or None
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, _password = decoded.partition(":")
        return user or None
    return None
