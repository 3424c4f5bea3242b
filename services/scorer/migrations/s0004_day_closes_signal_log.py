"""scorer: signals decided at day closes (the last closed day and its score), and a log of every signal

``closed_on`` / ``closed_score`` / ``closed_band`` hold the last day close, which hysteresis and signals read;
``score`` / ``band`` stay the score at the account's tip, which the API shows. Existing rows count as closed
through the day before their last evaluation, with that evaluation's score. ``signal_log`` keeps every signal
raised (the outbox deletes what it published) for the backtest.

Revision ID: s0004
Revises: s0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "s0004"
down_revision: str | Sequence[str] | None = "s0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("account_health", sa.Column("closed_on", sa.Date, nullable=True))
    op.add_column("account_health", sa.Column("closed_score", sa.Float, nullable=True))
    op.add_column("account_health", sa.Column("closed_band", sa.String(10), nullable=True))
    op.execute(
        "UPDATE account_health SET closed_on = (as_of AT TIME ZONE 'UTC')::date - 1,"
        " closed_score = score, closed_band = band WHERE as_of IS NOT NULL"
    )
    op.create_index("account_health_partition_closed_on", "account_health", ["partition", "closed_on"])
    op.create_table(
        "signal_log",
        sa.Column("signal_id", sa.String(255), primary_key=True),
        sa.Column("account_id", sa.String(200), nullable=False),
        sa.Column("signal_type", sa.String(50), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("recovered", sa.Boolean, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", JSONB, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
    )
    op.create_index("signal_log_account_occurred_at", "signal_log", ["account_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("signal_log")
    op.drop_index("account_health_partition_closed_on", "account_health")
    for column in ("closed_band", "closed_score", "closed_on"):
        op.drop_column("account_health", column)
