"""The alerter's tables (created by services/alerter/migrations)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Identity, Integer, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

processed_signals = Table(
    "processed_signals",
    metadata,
    Column("signal_id", String(255), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One alert per (account, signal type); last_signal is the latest signal that changed it.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", String(200), nullable=False),
    Column("signal_type", String(50), nullable=False),
    Column("state", String(20), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("last_signal", JSONB, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_notified_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("snoozed_until", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("reminders_sent", Integer, nullable=False, server_default="0"),
    Column("inhibited_by", BigInteger),  # the critical alert on the same account holding this one's notice back
    Column("held_notice", String(20)),  # the notice held back, sent when the inhibition ends
    # how its latest notice (sent or held) was recorded: live, historic (backfill) or shadow (notice_mode.py)
    Column("notice_mode", String(20), nullable=False, server_default="live"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),  # first opened
    # what became of the account, told by a person on resolving (lifecycle.Outcome), with a note and who
    Column("outcome", String(30)),
    Column("outcome_note", Text),
    Column("outcome_by", String(200)),
)

# The outbox: one row per (cause, destination), written with the alert and the consumed offset.
# cause: a signal id, "reminder:<alert>:<n>", "released:...", "resolve:..." or "digest:<target hash>:<period>[:<mode>]".
# status: pending -> sent | dead; historic and shadow rows are recorded with that status and never sent.
# next_attempt_at also holds a new row back for its account's group (grouping.py); rows of one account and
# destination that are due together go out as one message.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("alert_id", BigInteger),
    Column("cause", String(255), nullable=False),
    Column("notice", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("target", Text, nullable=False),
    Column("route", String(50), nullable=False),
    Column("mention", String(200)),
    Column("payload", JSONB, nullable=False),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("account_id", String(200)),  # the group it goes out with; none for a digest
)

# Tech-touch notices waiting for their destination's next digest email.
digest_items = Table(
    "digest_items",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("target", Text, nullable=False),
    Column("alert_id", BigInteger, nullable=False),
    Column("cause", String(255), nullable=False),
    Column("notice", String(20), nullable=False),
    Column("route", String(50), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivery_id", BigInteger),
    Column("mode", String(20), nullable=False, server_default="live"),  # historic/shadow: digest recorded only
)
