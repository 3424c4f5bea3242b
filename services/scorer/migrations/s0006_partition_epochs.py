"""scorer: partition ownership epochs (fencing of checkpoints) and profiles stamped when they change

Revision ID: s0006
Revises: s0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0006"
down_revision: str | Sequence[str] | None = "s0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scorer_partition_epochs",
        sa.Column("group_id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.String(250), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("account_profiles_updated_at", "account_profiles", ["updated_at"])


def downgrade() -> None:
    op.drop_index("account_profiles_updated_at", "account_profiles")
    op.drop_table("scorer_partition_epochs")
