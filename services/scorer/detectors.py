"""Risk-signal detection: which conditions hold for an account now, and which changed since last time.

Pure. A signal is raised when its condition starts to hold and a recovery is emitted when it stops, so an
ongoing condition is reported once, not on every event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.scorer.scoring import HealthScore
from services.scorer.windows import WindowMetrics
from shared.accounts import AccountProfile
from shared.signals import Audience, Band, RiskSignal, Severity, SignalType, signal_id_for


@dataclass(frozen=True)
class Thresholds:
    usage_drop_ratio: float = 0.8  # warn below 80% of baseline (a drop of more than 20%, as Vitally does)
    usage_drop_critical_ratio: float = 0.5
    ticket_spike_min: int = 3  # at least this many tickets opened in the current window...
    ticket_spike_factor: float = 2.0  # ...and this many times the baseline weekly rate
    inactivity_days: int = 5  # PostHog/Vitally: last seen more than 5 days ago


@dataclass(frozen=True)
class Condition:
    signal_type: SignalType
    severity: Severity
    audience: Audience
    evidence: dict[str, float] = field(default_factory=dict)


def current_conditions(m: WindowMetrics, health: HealthScore, th: Thresholds) -> dict[SignalType, Condition]:
    found: dict[SignalType, Condition] = {}
    ratio = m.usage_ratio
    if ratio is not None and ratio < th.usage_drop_ratio:
        sev = Severity.CRITICAL if ratio < th.usage_drop_critical_ratio else Severity.WARNING
        found[SignalType.USAGE_DROP] = Condition(
            SignalType.USAGE_DROP, sev, Audience.CSM, {"usage_ratio": round(ratio, 3)}
        )
    if (
        m.tickets_current >= th.ticket_spike_min
        and m.tickets_current >= th.ticket_spike_factor * m.tickets_baseline_weekly
    ):
        found[SignalType.TICKET_SPIKE] = Condition(
            SignalType.TICKET_SPIKE,
            Severity.WARNING,
            Audience.BOTH,
            {"tickets_current": m.tickets_current, "tickets_baseline_weekly": round(m.tickets_baseline_weekly, 2)},
        )
    if m.days_since_activity is not None and m.days_since_activity > th.inactivity_days:
        found[SignalType.INACTIVITY] = Condition(
            SignalType.INACTIVITY, Severity.WARNING, Audience.CSM, {"days_since_activity": m.days_since_activity}
        )
    if health.band is not Band.GREEN:
        sev = Severity.CRITICAL if health.band is Band.RED else Severity.WARNING
        found[SignalType.BAND_CHANGE] = Condition(SignalType.BAND_CHANGE, sev, Audience.CSM, {"score": health.score})
    return found


@dataclass(frozen=True)
class Transition:
    condition: Condition
    recovered: bool


def transitions(now: dict[SignalType, Condition], active: dict[SignalType, Severity]) -> list[Transition]:
    """Conditions that started, got more severe, or cleared since ``active`` (type -> severity last raised)."""
    out: list[Transition] = []
    for t, cond in now.items():
        before = active.get(t)
        if before is None or cond.severity.rank > before.rank:
            out.append(Transition(cond, recovered=False))
    for t, sev in active.items():
        if t not in now:
            out.append(
                Transition(Condition(t, sev, Audience.CSM if t is not SignalType.TICKET_SPIKE else Audience.BOTH), True)
            )
    return out


def explain(m: WindowMetrics, health: HealthScore) -> str:
    """One line saying why, from the biggest detractors first."""
    parts: list[str] = []
    ratio = m.usage_ratio
    if ratio is not None and ratio < 0.95:
        parts.append(f"usage {round((ratio - 1) * 100):+d}% vs baseline")
    if m.tickets_current:
        parts.append(f"{m.tickets_current} tickets this week")
    if m.escalations_current:
        parts.append(f"{m.escalations_current} escalated/urgent")
    if m.days_since_activity is not None and m.days_since_activity >= 3:
        parts.append(f"last active {m.days_since_activity} days ago")
    if not parts:
        parts.append("no risk factors")
    return f"health {health.score:.0f} ({health.band}): " + "; ".join(parts)


def build_signal(
    *,
    account_id: str,
    transition: Transition,
    occurred_at: datetime,
    health: HealthScore,
    previous: HealthScore | None,
    metrics: WindowMetrics,
    account: AccountProfile | None,
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
        explanation=explain(metrics, health),
        evidence={k: float(v) for k, v in cond.evidence.items()},
        occurred_at=occurred_at,
        account=account,
    )
