"""The backtest's inputs, parameters and results: frozen dataclasses, no behaviour beyond naming.

The definitions of every measure are in ``services.backtest.measures``, which computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


@dataclass(frozen=True)
class AccountHistory:
    account_id: str
    first_day: date  # first day observed (first event or created_date)
    last_day: date  # last day observed: the churn day if churned, else the data end
    churned_on: date | None = None
    csm: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class Alert:
    account_id: str
    signal_type: str
    severity: str
    raised_on: date


@dataclass(frozen=True)
class ScorePoint:
    account_id: str
    day: date
    value: float


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class VerdictCriteria:
    min_lift: float = 2.0
    max_alerts_per_account_month: float = 0.5
    min_judged_alerts: int = 20


@dataclass(frozen=True)
class BacktestParams:
    horizon_days: int = 60
    lead_min_days: int = 14
    lead_max_days: int = 60
    warmup_days: int = 28
    verdict: VerdictCriteria = VerdictCriteria()


class VerdictKind(StrEnum):
    EARNS_ITS_PLACE = "earns its place"
    FALLS_SHORT = "falls short"
    TOO_FEW_TO_JUDGE = "too few to judge"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RuleKey:
    signal_type: str | None = None  # None: every risk alert (of ``only``, where given)
    severity: str | None = None
    name: str | None = None  # a group's label, e.g. "routed to people"
    only: frozenset[tuple[str, str]] | None = None  # a group: the (signal type, severity) pairs it takes

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        if self.signal_type is None:
            return "all risk alerts"
        return self.signal_type if self.severity is None else f"{self.signal_type} / {self.severity}"

    def matches(self, alert: Alert) -> bool:
        if self.only is not None and (alert.signal_type, alert.severity) not in self.only:
            return False
        return (self.signal_type in (None, alert.signal_type)) and (self.severity in (None, alert.severity))


@dataclass(frozen=True)
class LeadBin:
    from_days: int
    to_days: int  # included
    churners: int


@dataclass(frozen=True)
class WeekCount:
    week_start: date
    alerts: int


@dataclass(frozen=True)
class LeadTimes:
    days: tuple[int, ...]  # one per churner warned within H, sorted
    median: float | None
    q1: float | None
    q3: float | None
    histogram: tuple[LeadBin, ...]  # weekly bins from 0 to H days before the churn


@dataclass(frozen=True)
class RuleMeasures:
    rule: RuleKey
    alerts: int
    accounts_alerted: int
    judged: int
    right: int
    unjudged: int
    precision: float | None
    lift: float | None
    churners_observable: int
    churners_warned: int
    recall: float | None
    lead: LeadTimes
    alerts_per_account_month: float | None
    alerts_per_csm_week: float | None
    max_alerts_per_csm_week: float | None
    alerts_per_week: tuple[WeekCount, ...]  # from the period's start; the last week may be short
    verdict: Verdict


@dataclass(frozen=True)
class WeekFlagMeasures:
    threshold: float | None  # None for the any-alert flag
    weeks: int
    positives: int
    flagged: int
    flagged_positive: int
    precision: float | None
    recall: float | None
    flagged_share: float | None
    lift: float | None


@dataclass(frozen=True)
class ScoreMeasures:
    name: str
    higher_is_riskier: bool
    weeks_scored: int
    weeks_unscored: int
    base_rate: float | None
    auc: float | None
    thresholds: tuple[WeekFlagMeasures, ...]


@dataclass(frozen=True)
class AccountWeek:
    account_id: str
    day: date
    churn_follows: bool


@dataclass(frozen=True)
class ReviewedAlert:
    """An alert as the alerter keeps it: whether a person acted on it and what they said happened."""

    account_id: str
    signal_type: str
    opened_on: date
    acted: bool  # acknowledged, snoozed or resolved by a person
    outcome: str | None  # what the person recorded when resolving: saved, churned_anyway, false_alarm, ...


@dataclass(frozen=True)
class FollowUpRow:
    label: str  # an outcome, "resolved without an outcome" or "not acted on"
    alerts: int
    share: float | None  # of all alerts
    churned: int  # alerts whose account churned within the horizon after the alert opened
    churn_share: float | None


@dataclass(frozen=True)
class FollowUp:
    alerts: int
    acted: int
    action_rate: float | None
    saves: int  # alerts resolved as "saved"
    save_rate: float | None  # of all alerts
    saves_churned_anyway: int  # recorded as saved, yet the account churned within the horizon
    rows: tuple[FollowUpRow, ...]


@dataclass(frozen=True)
class BacktestReport:
    period: Period
    params: BacktestParams
    accounts: int
    churners: int
    churners_observable: int
    account_weeks: int
    positive_weeks: int
    base_rate: float | None
    alerts: int
    alerts_unknown_account: int
    observed_account_days: int
    csms: int
    rules: tuple[RuleMeasures, ...]
    any_alert_weeks: WeekFlagMeasures
    scores: tuple[ScoreMeasures, ...] = ()
    follow_up: FollowUp | None = None  # what people did with the alerts, where the alerter's table was there to read
