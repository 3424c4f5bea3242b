"""Ingest's tables (created by services/ingest/migrations)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB

# The API key table is every service's: defined in shared.key_store, created by this service's migrations.
from shared.key_store import api_keys as api_keys

metadata = MetaData()

# The last profile Kafka acknowledged for each account: what GET /v1/accounts/{id} answers.
published_accounts = Table(
    "ingest_accounts",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("profile", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
