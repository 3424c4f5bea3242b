"""The console's own table (created by services/console/migrations): who may sign in."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table, func

metadata = MetaData()

# email is stored lower-case: it is also how "my accounts" finds the accounts whose CSM this person is
console_users = Table(
    "console_users",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("disabled_at", DateTime(timezone=True)),
)
