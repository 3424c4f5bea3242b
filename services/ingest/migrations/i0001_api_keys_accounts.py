"""ingest: hashed API keys, and the account profiles ingest has published

Revision ID: i0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "i0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ingest",)
depends_on: str | Sequence[str] | None = ("c0001",)


def upgrade() -> None:
    op.create_table(
        "ingest_api_keys",
        sa.Column("prefix", sa.String(16), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "ingest_accounts",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("profile", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("ingest_accounts")
    op.drop_table("ingest_api_keys")
