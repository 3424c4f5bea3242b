"""alerter: inhibition (a critical alert holds back its account's warning notices)

Revision ID: a0003
Revises: a0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a0003"
down_revision: str | Sequence[str] | None = "a0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("inhibited_by", sa.BigInteger, sa.ForeignKey("alerts.id"), nullable=True))
    op.add_column("alerts", sa.Column("held_notice", sa.String(20), nullable=True))
    op.create_index(
        "alerts_inhibited_by", "alerts", ["inhibited_by"], postgresql_where=sa.text("inhibited_by IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("alerts_inhibited_by", "alerts")
    op.drop_column("alerts", "held_notice")
    op.drop_column("alerts", "inhibited_by")
