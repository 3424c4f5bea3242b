"""scorer: the ids of counted events as one row per account and day (seen_event_days), not a row per event

Each row holds the 8-byte keys (the first 8 bytes of md5(event_id)) of the events counted for that account
and day, concatenated. A batch reads the rows of the accounts it touches and appends to the days it adds to:
a few rows per account instead of an index insert per event, which was the scorer's largest cost per event,
and 8 bytes per event instead of about 120. Existing ids are carried over. A downgrade cannot turn keys back
into ids: it leaves an empty seen_events (ids counted before it may then count again).

Revision ID: s0003
Revises: s0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0003"
down_revision: str | Sequence[str] | None = "s0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_event_days",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("ids", sa.LargeBinary, nullable=False),
    )
    # random bytes do not compress: store long rows out of line without trying
    op.execute("ALTER TABLE seen_event_days ALTER COLUMN ids SET STORAGE EXTERNAL")
    op.execute(
        "INSERT INTO seen_event_days (account_id, day, ids)"
        " SELECT account_id, occurred_on, string_agg(substring(decode(md5(event_id), 'hex') FROM 1 FOR 8), ''::bytea)"
        " FROM seen_events GROUP BY account_id, occurred_on"
    )
    op.drop_table("seen_events")


def downgrade() -> None:
    op.create_table(
        "seen_events",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("occurred_on", sa.Date, nullable=False),
    )
    op.create_index("seen_events_occurred_on", "seen_events", ["occurred_on"])
    op.drop_table("seen_event_days")
