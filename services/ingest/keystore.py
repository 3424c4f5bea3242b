"""Moved to ``shared.key_store`` (one key store for every service); kept so existing imports work."""

from __future__ import annotations

from shared.key_store import KeyStore, KeyStoreUnavailable, create_key, issue_key, list_keys, revoke_key

__all__ = ["KeyStore", "KeyStoreUnavailable", "create_key", "issue_key", "list_keys", "revoke_key"]
