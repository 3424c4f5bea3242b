"""Ingest's tables (created by services/ingest/migrations)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Only the SHA-256 of a key is kept; the prefix names it in listings and logs.
api_keys = Table(
    "ingest_api_keys",
    metadata,
    Column("prefix", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

# The last profile Kafka acknowledged for each account: what GET /v1/accounts/{id} answers.
published_accounts = Table(
    "ingest_accounts",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("profile", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
