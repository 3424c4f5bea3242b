"""alerter: notice modes (a backfill's historic notices and a shadow alerter's are recorded, never sent)

Revision ID: a0004
Revises: a0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a0004"
down_revision: str | Sequence[str] | None = "a0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before this revision were all sent (or due to be): live.
    op.add_column("alerts", sa.Column("notice_mode", sa.String(20), nullable=False, server_default="live"))
    op.add_column("digest_items", sa.Column("mode", sa.String(20), nullable=False, server_default="live"))


def downgrade() -> None:
    op.drop_column("digest_items", "mode")
    op.drop_column("alerts", "notice_mode")
