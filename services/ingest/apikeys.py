"""Moved to ``shared.api_keys`` (every service checks keys the same way); kept so existing imports work."""

from __future__ import annotations

from shared.api_keys import ApiKey, NewKey, Scope, generate_key, hash_key, key_from_headers, parse_scopes

__all__ = ["ApiKey", "NewKey", "Scope", "generate_key", "hash_key", "key_from_headers", "parse_scopes"]
