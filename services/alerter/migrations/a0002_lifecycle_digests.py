"""alerter: alert lifecycle times, Slack mentions on deliveries, tech-touch digest items

Revision ID: a0002
Revises: a0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "a0002"
down_revision: str | Sequence[str] | None = "a0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("last_notified_at", "acknowledged_at", "snoozed_until", "resolved_at"):
        op.add_column("alerts", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("reminders_sent", sa.Integer, nullable=False, server_default="0"))
    op.create_index("alerts_state", "alerts", ["state"])
    op.alter_column("deliveries", "alert_id", nullable=True)  # a digest row covers many alerts
    op.add_column("deliveries", sa.Column("mention", sa.String(200), nullable=True))
    op.create_table(
        "digest_items",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("alert_id", sa.BigInteger, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("signal_id", sa.String(255), nullable=False),
        sa.Column("notice", sa.String(20), nullable=False),
        sa.Column("route", sa.String(50), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("delivery_id", sa.BigInteger, sa.ForeignKey("deliveries.id"), nullable=True),
        sa.UniqueConstraint("signal_id", "notice", "target", name="digest_items_once_per_target"),
    )
    op.create_index(
        "digest_items_pending",
        "digest_items",
        ["target", "created_at"],
        postgresql_where=sa.text("delivery_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("digest_items")
    op.drop_column("deliveries", "mention")
    op.alter_column("deliveries", "alert_id", nullable=False)
    op.drop_index("alerts_state", "alerts")
    for name in ("last_notified_at", "acknowledged_at", "snoozed_until", "resolved_at", "reminders_sent"):
        op.drop_column("alerts", name)
