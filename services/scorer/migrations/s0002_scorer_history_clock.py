"""scorer: score history per day, component snapshots, account partition, the event-time clock

Revision ID: s0002
Revises: s0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "s0002"
down_revision: str | Sequence[str] | None = "s0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("account_health", sa.Column("history", JSONB, nullable=False, server_default="{}"))
    op.add_column("account_health", sa.Column("partition", sa.Integer, nullable=True))
    op.add_column("account_health", sa.Column("scorecard", sa.String(100), nullable=True))
    op.create_index("account_health_partition_as_of", "account_health", ["partition", "as_of"])
    op.create_table(
        "score_history",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("band", sa.String(10), nullable=False),
    )
    op.create_table(
        "scorer_clock",
        sa.Column("topic", sa.String(250), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scorer_clock")
    op.drop_table("score_history")
    op.drop_index("account_health_partition_as_of", "account_health")
    for column in ("scorecard", "partition", "history"):
        op.drop_column("account_health", column)
