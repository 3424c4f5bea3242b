"""Risk signals: what the scorer emits and the alerter routes.

A signal carries event time (``occurred_at``), never wall-clock time, and a deterministic ``signal_id``
so that a replay or a retry of the same events yields the same id and the alerter can drop the copy.
A signal also carries a snapshot of the account's profile, so routing needs no second lookup.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.accounts import AccountProfile


class SignalType(StrEnum):
    USAGE_DROP = "usage_drop"
    TICKET_SPIKE = "ticket_spike"
    ESCALATION = "escalation"
    INACTIVITY = "inactivity"
    SCORE_DROP = "score_drop"
    BAND_CHANGE = "band_change"
    RENEWAL_RISK = "renewal_risk"
    ONBOARDING_STALL = "onboarding_stall"
    DETRACTOR = "detractor"
    EXPANSION = "expansion"
    CHURN_RISK = "churn_risk"  # the calibrated estimate of churn within the model's horizon crossed its threshold
    # a source stopped sending, or far more accounts went quiet on one day than ever do: a problem upstream of
    # Churnwatch, for operators (account_id names the source, e.g. "source:web-app"); no account risk
    DATA_QUALITY = "data_quality"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Audience(StrEnum):
    """Proactive account risk goes to the CSM, reactive ticket trouble to support, some to both; data problems
    to the operators who run the integrations."""

    CSM = "csm"
    SUPPORT = "support"
    BOTH = "both"
    OPS = "ops"


class Band(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class RuleQuality(BaseModel):
    """What a rule's alerts were worth in a backtest (``churnwatch backtest``) on data it was not tuned on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: float | None = Field(description="Share of its alerts followed by churn within the horizon")
    lift: float | None = Field(description="Precision / the base rate: 1.0 is no better than chance")
    alerts_per_account_month: float | None = None
    judged_alerts: int = 0
    source: str = Field(description="Which backtest: the data set, its period and the horizon")


class RiskSignal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    signal_id: Annotated[str, Field(min_length=1, max_length=255)]
    account_id: str
    signal_type: SignalType
    severity: Severity
    audience: Audience
    recovered: bool = Field(default=False, description="True when the condition has cleared")
    score_before: float | None = None
    score_after: float | None = None
    band_before: Band | None = None
    band_after: Band | None = None
    explanation: str = Field(description="One line a person understands: why this fired")
    evidence: dict[str, float] = Field(default_factory=dict)
    occurred_at: AwareDatetime = Field(description="Event time of the evidence that raised it")
    account: AccountProfile | None = None
    quality: RuleQuality | None = Field(default=None, description="The rule's backtested precision and lift")


def signal_id_for(account_id: str, signal_type: SignalType, occurred_at: datetime, discriminator: str = "") -> str:
    """Same account, type, event-time day and discriminator give the same id, however often replayed."""
    day = occurred_at.date().isoformat()
    digest = hashlib.sha256(f"{account_id}\x1f{signal_type}\x1f{day}\x1f{discriminator}".encode()).hexdigest()
    return f"{signal_type}:{digest[:32]}"
