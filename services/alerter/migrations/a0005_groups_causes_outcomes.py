"""alerter: grouped sends, deliveries.cause, alert outcomes

deliveries.signal_id and digest_items.signal_id held a cause (a signal id, a reminder, a release, a resolve or
a digest period), so they are named ``cause``. deliveries.account_id says which account's group a row goes
out with (grouping.py). Alerts get ``created_at`` (first opened) and the outcome a person records on resolving.

Revision ID: a0005
Revises: a0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a0005"
down_revision: str | Sequence[str] | None = "a0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("deliveries", "signal_id", new_column_name="cause")
    op.alter_column("digest_items", "signal_id", new_column_name="cause")
    op.add_column("deliveries", sa.Column("account_id", sa.String(200), nullable=True))
    op.execute("UPDATE deliveries d SET account_id = a.account_id FROM alerts a WHERE d.alert_id = a.id")
    op.create_index("deliveries_group", "deliveries", ["account_id", "channel", "target"])
    op.add_column("alerts", sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()))
    op.execute("UPDATE alerts SET created_at = opened_at")
    op.alter_column("alerts", "created_at", nullable=False)
    op.create_index("alerts_created_at", "alerts", ["created_at"])
    op.add_column("alerts", sa.Column("outcome", sa.String(30), nullable=True))
    op.add_column("alerts", sa.Column("outcome_note", sa.Text, nullable=True))
    op.add_column("alerts", sa.Column("outcome_by", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("alerts", "outcome_by")
    op.drop_column("alerts", "outcome_note")
    op.drop_column("alerts", "outcome")
    op.drop_index("alerts_created_at", "alerts")
    op.drop_column("alerts", "created_at")
    op.drop_index("deliveries_group", "deliveries")
    op.drop_column("deliveries", "account_id")
    op.alter_column("digest_items", "cause", new_column_name="signal_id")
    op.alter_column("deliveries", "cause", new_column_name="signal_id")
