"""The scorer's tables (created by services/scorer/migrations)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer, LargeBinary, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

account_profiles = Table(
    "account_profiles",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("profile", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

account_health = Table(
    "account_health",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("state", JSONB, nullable=False),
    Column("score", Float),
    Column("band", String(10)),
    Column("components", JSONB, nullable=False),
    Column("active_signals", JSONB, nullable=False),
    Column("explanation", Text),
    Column("as_of", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("history", JSONB, nullable=False),  # daily score + component points, last 8 days
    Column("partition", Integer),  # the events partition the account lives on (for the sweep)
    Column("scorecard", String(100)),
    # the last day close (migration s0004): signals and hysteresis read it, score/band above are the tip's
    Column("closed_on", Date),
    Column("closed_score", Float),
    Column("closed_band", String(10)),
    # the churn-risk estimate at the last day close and its explanation (migration s0005)
    Column("risk", Float),
    Column("risk_explanation", Text),
)

# One row per account and event-time day: the score at the day's last evaluation.
score_history = Table(
    "score_history",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("score", Float, nullable=False),
    Column("band", String(10), nullable=False),
    Column("risk", Float),  # the churn-risk estimate at the day's close (migration s0005)
)

# The scorer's clock: the latest event time seen per events partition (written with the batch).
scorer_clock = Table(
    "scorer_clock",
    metadata,
    Column("topic", String(250), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("watermark", DateTime(timezone=True), nullable=False),
)

# The events already counted, per account and day: a client retry or a replay never counts twice. ``ids`` is
# the concatenated 8-byte keys (``store.event_key``) of that day's events (migration s0003).
seen_event_days = Table(
    "seen_event_days",
    metadata,
    Column("account_id", String(200), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("ids", LargeBinary, nullable=False),
)

# Every signal raised, kept (the outbox forgets what it published): what the backtest reads (migration s0004).
signal_log = Table(
    "signal_log",
    metadata,
    Column("signal_id", String(255), primary_key=True),
    Column("account_id", String(200), nullable=False),
    Column("signal_type", String(50), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("recovered", Boolean, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("evidence", JSONB, nullable=False),
    Column("explanation", Text, nullable=False),
)

# Signals written in the same transaction as the state that raised them, published after commit.
signal_outbox = Table(
    "signal_outbox",
    metadata,
    Column("signal_id", String(255), primary_key=True),
    Column("account_id", String(200), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
