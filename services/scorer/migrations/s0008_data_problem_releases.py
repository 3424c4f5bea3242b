"""scorer: data problems a person released (their held alerts go out at the accounts' next day close)

Revision ID: s0008
Revises: s0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0008"
down_revision: str | Sequence[str] | None = "s0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_problem_releases",
        sa.Column("problem", sa.String(200), primary_key=True),
        sa.Column("since", sa.Date, primary_key=True),  # the problem's first day: a later one is a new problem
        sa.Column("released_by", sa.String(200), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("data_problem_releases")
