from __future__ import annotations

from pydantic import Field

from shared.key_auth import KeyAuthSettings
from shared.settings import CommonSettings


class ScorerSettings(CommonSettings, KeyAuthSettings):
    http_port: int = 8001
    max_batch: int = Field(default=20_000, ge=1, description="records per poll, folded in memory")
    checkpoint_interval_seconds: float = Field(
        default=1.0, gt=0, description="state, offsets and signals go to PostgreSQL at least this often (API lag)"
    )
    checkpoint_catch_up_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="the interval instead while more than max_batch records wait (a replay, a backlog): the read API"
        " lags by the backlog anyway, and each checkpoint writes every account changed since the last; a crash"
        " redoes at most this much (Kafka Streams commits every 30 s by default)",
    )
    checkpoint_events: int = Field(
        default=1_000_000, ge=1, description="or after this many records, if sooner (bounds what a crash redoes)"
    )
    checkpoint_accounts: int = Field(
        default=20_000,
        ge=1,
        description="or once this many accounts changed, if sooner: bounds a checkpoint's rows (its memory, its"
        " transaction, and the pause while they are encoded, which must stay well inside the group session)",
    )
    max_resident_accounts: int = Field(
        default=20_000,
        ge=100,
        description="accounts kept in memory (up to ~30 KB each, resident.RESIDENT_BYTES_PER_ACCOUNT); beyond it"
        " the coldest ones already checkpointed are dropped and read again on their next event",
    )
    current_window_days: int = Field(default=7, ge=1)
    baseline_window_days: int = Field(default=28, ge=1)
    horizon_days: int = Field(default=90, ge=7)
    min_baseline_days: int = Field(default=14, ge=1, description="history needed before a baseline counts")
    grace_days: int = Field(default=7, ge=0, description="how late (in days behind the account) an event may be")
    scorecard_path: str | None = Field(default=None, description="YAML scorecard; the packaged one if unset")
    risk_model_path: str | None = Field(
        default=None, description="the churn-risk model (JSON, from churnwatch calibrate); the packaged one if unset"
    )
    risk_model_fallback: bool = Field(
        default=False, description="an unusable risk model file falls back to the packaged one (said in /readyz)"
    )
    rule_quality_path: str | None = Field(
        default=None, description="each rule's backtested precision and lift (JSON); the packaged one if unset"
    )
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    dedup_prune_interval_seconds: float = Field(default=300.0, gt=0, description="how often old event ids go")
