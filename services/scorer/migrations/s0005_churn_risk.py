"""scorer: the churn-risk estimate at each day close (score_history.risk) and the latest one per account

Revision ID: s0005
Revises: s0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0005"
down_revision: str | Sequence[str] | None = "s0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("score_history", sa.Column("risk", sa.Float, nullable=True))
    op.add_column("account_health", sa.Column("risk", sa.Float, nullable=True))
    op.add_column("account_health", sa.Column("risk_explanation", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("account_health", "risk_explanation")
    op.drop_column("account_health", "risk")
    op.drop_column("score_history", "risk")
