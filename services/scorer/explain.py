"""One line that says why an account scores what it does, e.g.
"health 31 (red, -24 in 7 days): usage -52% vs baseline; 3 urgent tickets this week". Pure."""

from __future__ import annotations

from collections.abc import Callable

from services.scorer.metrics import WindowMetrics
from services.scorer.scoring import HealthScore
from shared.signals import Band


def _count(n: int, thing: str, plural: str | None = None) -> str:
    return f"{n} {thing if n == 1 else plural or thing + 's'}"


def _usage(m: WindowMetrics) -> str | None:
    r = m.usage_ratio
    return None if r is None or abs(r - 1) < 0.1 else f"usage {round((r - 1) * 100):+d}% vs baseline"


def _urgent(m: WindowMetrics) -> str | None:
    return f"{_count(m.urgent_current, 'urgent ticket')} this week" if m.urgent_current else None


def _escalated(m: WindowMetrics) -> str | None:
    n = m.escalations_current - m.urgent_current
    return f"{_count(n, 'escalation')} this week" if n > 0 else None


def _tickets(m: WindowMetrics) -> str | None:
    return f"{m.tickets_current} tickets opened this week" if m.tickets_current >= 2 else None


def _recency(m: WindowMetrics) -> str | None:
    d = m.days_since_activity
    return f"last active {_count(d, 'day')} ago" if d is not None and d >= 3 else None


def _seats(m: WindowMetrics) -> str | None:
    u = m.seat_utilisation
    return f"{round(u * 100)}% of seats active" if u is not None and (u < 0.5 or u >= 0.9) else None


def _sentiment(m: WindowMetrics) -> str | None:
    parts = []
    if m.nps_latest is not None and m.nps_latest <= 6:
        parts.append(f"NPS {m.nps_latest}")
    if m.csat_avg is not None and m.csat_avg < 3.5:
        parts.append(f"CSAT {m.csat_avg:.1f}")
    return ", ".join(parts) or None


def _onboarding(m: WindowMetrics) -> str | None:
    if m.activated is False and m.account_age_days is not None:
        return f"not activated after {_count(m.account_age_days, 'day')}"
    return None


def _renewal(m: WindowMetrics) -> str | None:
    d = m.days_to_renewal
    return f"renewal in {_count(d, 'day')}" if d is not None and 0 <= d <= 90 else None


PHRASES: tuple[Callable[[WindowMetrics], str | None], ...] = (
    _usage,
    _urgent,
    _escalated,
    _tickets,
    _recency,
    _seats,
    _sentiment,
    _onboarding,
    _renewal,
)


def explain(m: WindowMetrics, health: HealthScore, score_7d_ago: float | None = None) -> str:
    parts = [p for phrase in PHRASES if (p := phrase(m))]
    if health.band is Band.GREEN:
        parts = parts[:3]
    if not parts:
        parts.append("no risk factors")
    change = "" if score_7d_ago is None else f", {health.score - score_7d_ago:+.0f} in 7 days"
    return f"health {health.score:.0f} ({health.band}{change}): " + "; ".join(parts)
