"""The health score: components that each map one metric to 0-100, weighted into one explainable number.

Pure functions. A component whose metric is unknown (no baseline yet, no activity ever) is left out and the
weights of the rest are renormalised, so missing data is never silently scored as neutral; the explanation
says which components were missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.scorer.windows import WindowMetrics
from shared.signals import Band


@dataclass(frozen=True)
class Component:
    """Maps a metric linearly from ``worst`` (0 points) to ``best`` (100 points); either may be the larger."""

    name: str
    weight: float
    worst: float
    best: float

    def points(self, value: float) -> float:
        if self.best == self.worst:
            return 100.0 if value >= self.best else 0.0
        fraction = (value - self.worst) / (self.best - self.worst)
        return round(100.0 * min(1.0, max(0.0, fraction)), 1)


@dataclass(frozen=True)
class Bands:
    green_at: float = 70.0
    yellow_at: float = 40.0
    hysteresis: float = 3.0  # leave a band only once the score is this far past its boundary


@dataclass(frozen=True)
class Scorecard:
    components: tuple[Component, ...]
    bands: Bands = Bands()


DEFAULT_SCORECARD = Scorecard(
    components=(
        Component("usage_trend", weight=0.40, worst=0.5, best=1.0),  # current/baseline activity ratio
        Component("recency", weight=0.20, worst=14, best=2),  # days since last activity
        Component("support_load", weight=0.25, worst=6, best=0),  # tickets opened in the current window
        Component("escalations", weight=0.15, worst=2, best=0),  # escalated or urgent tickets
    )
)


@dataclass(frozen=True)
class ComponentScore:
    name: str
    value: float | None
    points: float | None
    contribution: float  # points times normalised weight: what it adds to the score


@dataclass(frozen=True)
class HealthScore:
    score: float
    band: Band
    components: tuple[ComponentScore, ...]

    def component(self, name: str) -> ComponentScore | None:
        return next((c for c in self.components if c.name == name), None)


def component_values(m: WindowMetrics) -> dict[str, float | None]:
    return {
        "usage_trend": m.usage_ratio,
        "recency": None if m.days_since_activity is None else float(m.days_since_activity),
        "support_load": float(m.tickets_current),
        "escalations": float(m.escalations_current),
    }


def score_account(
    m: WindowMetrics, card: Scorecard = DEFAULT_SCORECARD, previous_band: Band | None = None
) -> HealthScore:
    values = component_values(m)
    known = [c for c in card.components if values.get(c.name) is not None]
    total_weight = sum(c.weight for c in known)
    parts: list[ComponentScore] = []
    score = 0.0
    for c in card.components:
        value = values.get(c.name)
        if value is None or total_weight == 0:
            parts.append(ComponentScore(c.name, None, None, 0.0))
            continue
        pts = c.points(value)
        contribution = pts * c.weight / total_weight
        score += contribution
        parts.append(ComponentScore(c.name, value, pts, round(contribution, 1)))
    score = round(score, 1) if known else 50.0
    return HealthScore(score=score, band=band_for(score, card.bands, previous_band), components=tuple(parts))


def band_for(score: float, bands: Bands, previous: Band | None = None) -> Band:
    plain = Band.GREEN if score >= bands.green_at else Band.YELLOW if score >= bands.yellow_at else Band.RED
    if previous is None or plain == previous:
        return plain
    h = bands.hysteresis
    # Only move once the score is clearly past the boundary, so a wobbling score does not flap.
    sticky = {
        Band.GREEN: score >= bands.green_at - h,
        Band.YELLOW: bands.yellow_at - h <= score < bands.green_at + h,
        Band.RED: score < bands.yellow_at + h,
    }
    return previous if sticky[previous] else plain
