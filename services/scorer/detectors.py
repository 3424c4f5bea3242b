"""Risk-signal detection: which conditions hold for an account now, and which changed since last time.

Pure. A signal is raised when its condition starts to hold (or gets more severe) and a recovery is emitted
when it stops, so an ongoing condition is reported once, not on every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from services.scorer.metrics import WindowMetrics
from services.scorer.scoring import HealthScore
from shared.accounts import AccountProfile
from shared.signals import Audience, Band, RiskSignal, RuleQuality, Severity, SignalType, signal_id_for


@dataclass(frozen=True)
class Thresholds:
    usage_drop_ratio: float = 0.8  # warn below 80% of baseline (a drop of more than 20%, as Vitally does)
    usage_drop_critical_ratio: float = 0.5
    ticket_spike_min: int = 3  # at least this many tickets opened in the current window...
    ticket_spike_factor: float = 2.0  # ...and this many times the baseline weekly rate
    escalation_critical_count: int = 3  # escalated/urgent tickets this week that make it critical
    inactivity_days: int = 5  # PostHog/Vitally: last seen more than 5 days ago
    score_drop_points: float = 15.0  # the score fell this much in seven days
    renewal_risk_days: int = 60  # renewal within this many days and not green
    onboarding_stall_days: int = 30  # no activation milestone by this age...
    onboarding_max_age_days: int = 120  # ...for accounts younger than this
    detractor_nps: int = 6  # NPS 0-6 is a detractor
    expansion_seat_utilisation: float = 0.9
    expansion_usage_ratio: float = 1.5  # strong usage growth, while green
    clear_after_days: int = 3  # hysteresis: a raised signal recovers only after its condition is absent this long
    min_observed_days: int = 14  # no band, score or seat signal from a window too young to judge


AUDIENCE = {
    SignalType.TICKET_SPIKE: Audience.BOTH,
    SignalType.ESCALATION: Audience.BOTH,
}


@dataclass(frozen=True)
class Condition:
    signal_type: SignalType
    severity: Severity
    audience: Audience
    evidence: dict[str, float] = field(default_factory=dict)


def _cond(t: SignalType, sev: Severity, **evidence: float) -> Condition:
    return Condition(t, sev, AUDIENCE.get(t, Audience.CSM), evidence)


def _usage(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    ratio = m.usage_ratio
    if ratio is None or ratio >= th.usage_drop_ratio:
        return None
    sev = Severity.CRITICAL if ratio < th.usage_drop_critical_ratio else Severity.WARNING
    return _cond(SignalType.USAGE_DROP, sev, usage_ratio=round(ratio, 3))


def _tickets(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    if (
        m.tickets_current < th.ticket_spike_min
        or m.tickets_current < th.ticket_spike_factor * m.tickets_baseline_weekly
    ):
        return None
    return _cond(
        SignalType.TICKET_SPIKE,
        Severity.WARNING,
        tickets_current=m.tickets_current,
        tickets_baseline_weekly=round(m.tickets_baseline_weekly, 2),
    )


def _escalation(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    if m.escalations_current <= 0:
        return None
    sev = Severity.CRITICAL if m.escalations_current >= th.escalation_critical_count else Severity.WARNING
    return _cond(SignalType.ESCALATION, sev, escalations_current=m.escalations_current, urgent=m.urgent_current)


def _inactivity(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    if m.days_since_activity is None or m.days_since_activity <= th.inactivity_days:
        return None
    sev = Severity.CRITICAL if m.days_since_activity > 3 * th.inactivity_days else Severity.WARNING
    return _cond(SignalType.INACTIVITY, sev, days_since_activity=m.days_since_activity)


def _band(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    if h.band is Band.GREEN:
        return None
    return _cond(SignalType.BAND_CHANGE, Severity.CRITICAL if h.band is Band.RED else Severity.WARNING, score=h.score)


def _renewal(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    days = m.days_to_renewal
    if days is None or not 0 <= days <= th.renewal_risk_days or h.band is Band.GREEN:
        return None
    sev = Severity.CRITICAL if h.band is Band.RED else Severity.WARNING
    return _cond(SignalType.RENEWAL_RISK, sev, days_to_renewal=days, score=h.score)


def _onboarding(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    age = m.account_age_days
    if m.activated is not False or age is None or not th.onboarding_stall_days < age <= th.onboarding_max_age_days:
        return None
    return _cond(SignalType.ONBOARDING_STALL, Severity.WARNING, account_age_days=age)


def _detractor(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    if m.nps_latest is None or m.nps_latest > th.detractor_nps:
        return None
    return _cond(SignalType.DETRACTOR, Severity.WARNING, nps=m.nps_latest)


def _expansion(m: WindowMetrics, h: HealthScore, th: Thresholds) -> Condition | None:
    if h.band is not Band.GREEN:
        return None
    util, ratio = m.seat_utilisation, m.usage_ratio
    if (util is None or util < th.expansion_seat_utilisation) and (ratio is None or ratio < th.expansion_usage_ratio):
        return None
    evidence = {k: round(v, 3) for k, v in (("seat_utilisation", util), ("usage_ratio", ratio)) if v is not None}
    return _cond(SignalType.EXPANSION, Severity.INFO, **evidence)


Detector = Callable[[WindowMetrics, HealthScore, Thresholds], Condition | None]
DETECTORS: tuple[Detector, ...] = (
    _usage,
    _tickets,
    _escalation,
    _inactivity,
    _band,
    _renewal,
    _onboarding,
    _detractor,
    _expansion,
)


# Read the score, which a young account's first days cannot support (a week of data is "4% of seats active").
SCORE_DERIVED = frozenset(
    {SignalType.BAND_CHANGE, SignalType.SCORE_DROP, SignalType.RENEWAL_RISK, SignalType.EXPANSION}
)


def current_conditions(
    m: WindowMetrics, health: HealthScore, th: Thresholds, score_7d_ago: float | None = None
) -> dict[SignalType, Condition]:
    found = [c for detect in DETECTORS if (c := detect(m, health, th)) is not None]
    if m.observed_days < th.min_observed_days:
        return {c.signal_type: c for c in found if c.signal_type not in SCORE_DERIVED}
    if score_7d_ago is not None and score_7d_ago - health.score >= th.score_drop_points:
        drop = round(score_7d_ago - health.score, 1)
        sev = Severity.CRITICAL if drop >= 2 * th.score_drop_points else Severity.WARNING
        found.append(_cond(SignalType.SCORE_DROP, sev, points_dropped=drop, score_7d_ago=score_7d_ago))
    return {c.signal_type: c for c in found}


@dataclass(frozen=True)
class Transition:
    condition: Condition
    recovered: bool


@dataclass(frozen=True)
class ActiveSignal:
    """A raised signal: the highest severity raised so far, and the last day its condition held."""

    severity: Severity
    last_held: date
    since: date | None = None  # the day it was raised, where a rule needs it (churn_risk renews after a month)


def transitions(
    now: dict[SignalType, Condition], active: dict[SignalType, ActiveSignal], today: date, clear_after_days: int = 0
) -> tuple[list[Transition], dict[SignalType, ActiveSignal]]:
    """Conditions that started, got more severe, or cleared since ``active``; and what is active afterwards.

    Hysteresis against flapping: a raised signal is not raised again while it holds at the same or a lower
    severity, and it recovers only once its condition has been absent for ``clear_after_days`` days.
    """
    out: list[Transition] = []
    still: dict[SignalType, ActiveSignal] = {}
    for t, cond in now.items():
        before = active.get(t)
        if before is None or cond.severity.rank > before.severity.rank:
            out.append(Transition(cond, recovered=False))
            still[t] = ActiveSignal(cond.severity, today)
        else:
            still[t] = ActiveSignal(before.severity, max(today, before.last_held))
    for t, raised in active.items():
        if t in now:
            continue
        if (today - raised.last_held).days >= clear_after_days:
            out.append(Transition(Condition(t, raised.severity, AUDIENCE.get(t, Audience.CSM)), True))
        else:
            still[t] = raised
    return out, still


def build_signal(
    *,
    account_id: str,
    transition: Transition,
    occurred_at: datetime,
    health: HealthScore,
    previous: HealthScore | None,
    explanation: str,
    account: AccountProfile | None,
    quality: RuleQuality | None = None,
) -> RiskSignal:
    cond = transition.condition
    discriminator = f"{'recovered' if transition.recovered else cond.severity}"
    return RiskSignal(
        signal_id=signal_id_for(account_id, cond.signal_type, occurred_at, discriminator),
        account_id=account_id,
        signal_type=cond.signal_type,
        severity=Severity.INFO if transition.recovered else cond.severity,
        audience=cond.audience,
        recovered=transition.recovered,
        score_before=previous.score if previous else None,
        score_after=health.score,
        band_before=previous.band if previous else None,
        band_after=health.band,
        explanation=explanation,
        evidence={k: float(v) for k, v in cond.evidence.items()},
        occurred_at=occurred_at,
        account=account,
        quality=quality,
    )
