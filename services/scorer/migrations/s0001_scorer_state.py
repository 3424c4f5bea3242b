"""scorer: account profiles, per-account health state, seen event ids, signal outbox

Revision ID: s0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "s0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("scorer",)
depends_on: str | Sequence[str] | None = ("c0001",)


def upgrade() -> None:
    op.create_table(
        "account_profiles",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("profile", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "account_health",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("band", sa.String(10), nullable=True),
        sa.Column("components", JSONB, nullable=False, server_default="[]"),
        sa.Column("active_signals", JSONB, nullable=False, server_default="{}"),
        sa.Column("explanation", sa.Text, nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("account_health_band_score", "account_health", ["band", "score"])
    op.create_table(
        "seen_events",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("occurred_on", sa.Date, nullable=False),
    )
    op.create_index("seen_events_occurred_on", "seen_events", ["occurred_on"])
    op.create_table(
        "signal_outbox",
        sa.Column("signal_id", sa.String(255), primary_key=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("signal_outbox", "seen_events", "account_health", "account_profiles"):
        op.drop_table(table)
