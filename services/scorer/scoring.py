"""The health score: components that each map one metric to 0-100, weighted into one explainable number.

Pure functions. A component whose metric is unknown (no baseline yet, no seats purchased, no survey answer)
is left out and the weights of the rest are renormalised, so missing data is never silently scored as
neutral; the explanation says which components were missing. The scorecard itself is read from YAML by
``services.scorer.scorecard``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.scorer.metrics import WindowMetrics
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
    name: str = "default"
    onboarding_days: int = 30  # an account should reach its activation milestone by this age


DEFAULT_SCORECARD = Scorecard(
    components=(
        Component("usage_trend", weight=0.25, worst=0.5, best=1.0),  # current/baseline activity ratio
        Component("engagement_breadth", weight=0.10, worst=1, best=5),  # distinct features this week
        Component("seat_utilisation", weight=0.10, worst=0.2, best=0.8),  # active users / seats purchased
        Component("recency", weight=0.15, worst=14, best=2),  # days since last activity
        Component("support_load", weight=0.10, worst=6, best=0),  # tickets opened in the current window
        Component("escalations", weight=0.10, worst=2, best=0),  # escalated or urgent tickets
        Component("sentiment", weight=0.10, worst=0.3, best=0.8),  # NPS and CSAT on one 0-1 scale
        Component("onboarding_progress", weight=0.05, worst=0, best=1),
        Component("renewal_proximity", weight=0.05, worst=14, best=90),  # days to renewal
    )
)
KNOWN_COMPONENTS = frozenset(c.name for c in DEFAULT_SCORECARD.components)


@dataclass(frozen=True)
class ComponentScore:
    name: str
    value: float | None
    points: float | None
    contribution: float  # points times normalised weight: what it adds to the score
    change_7d: float | None = None  # points now minus points seven days ago


@dataclass(frozen=True)
class HealthScore:
    score: float
    band: Band
    components: tuple[ComponentScore, ...]
    scorecard: str = "default"
    missing: tuple[str, ...] = field(default=())

    def component(self, name: str) -> ComponentScore | None:
        return next((c for c in self.components if c.name == name), None)


def sentiment(m: WindowMetrics) -> float | None:
    """Latest NPS (0-10) and average CSAT (1-5) on one 0-1 scale; None when neither was ever answered."""
    parts = []
    if m.nps_latest is not None:
        parts.append(m.nps_latest / 10)
    if m.csat_avg is not None:
        parts.append((m.csat_avg - 1) / 4)
    return None if not parts else round(sum(parts) / len(parts), 3)


def onboarding_progress(m: WindowMetrics, onboarding_days: int) -> float | None:
    """1 once activated; else the share of the onboarding period still left (0 when it has run out)."""
    if m.activated is None or m.account_age_days is None:
        return None
    if m.activated:
        return 1.0
    return round(max(0.0, 1 - m.account_age_days / onboarding_days), 3)


def component_values(m: WindowMetrics, onboarding_days: int = 30) -> dict[str, float | None]:
    return {
        "usage_trend": m.usage_ratio,
        "engagement_breadth": float(m.features_current) if m.days_since_activity is not None else None,
        "seat_utilisation": m.seat_utilisation,
        "recency": None if m.days_since_activity is None else float(m.days_since_activity),
        "support_load": float(m.tickets_current),
        "escalations": float(m.escalations_current),
        "sentiment": sentiment(m),
        "onboarding_progress": onboarding_progress(m, onboarding_days),
        "renewal_proximity": None if m.days_to_renewal is None else float(m.days_to_renewal),
    }


def score_account(
    m: WindowMetrics,
    card: Scorecard = DEFAULT_SCORECARD,
    previous_band: Band | None = None,
    points_7d_ago: dict[str, float] | None = None,
) -> HealthScore:
    compiled = _compiled(card)
    values = _value_row(m, card.onboarding_days)
    row = [values[i] for _, i in compiled]
    known = [c.weight for (c, _), v in zip(compiled, row, strict=True) if v is not None]
    total_weight = sum(known)
    if total_weight == 0:
        score = round(0.0, 1) if known else 50.0
        parts = tuple(c.unknown for c, _ in compiled)
        names = tuple(c.name for c, _ in compiled)
        return HealthScore(score, band_for(score, card.bands, previous_band), parts, card.name, names)
    before = points_7d_ago or {}
    found: list[ComponentScore] = []
    missing: list[str] = []
    score = 0.0
    for (c, _), value in zip(compiled, row, strict=True):
        if value is None:
            found.append(c.unknown)
            missing.append(c.name)
            continue
        key = (value, before.get(c.name), total_weight)
        hit = c.cache.get(key)
        if hit is None:
            if len(c.cache) >= _CACHE_PER_COMPONENT:
                c.cache.clear()
            hit = c.cache[key] = _component_score(c.name, c.weight, c.worst, c.best, value, key[1], total_weight)
        score += hit[1]
        found.append(hit[0])
    score = round(score, 1)
    band = band_for(score, card.bands, previous_band)
    return HealthScore(score, band, tuple(found), card.name, tuple(missing))


# the same values come back close after close (counts, days, saturated ratios): each component keeps its scores.
# The values are floats (``_value_row``), so a key's equality is its printed form's (3 and 3.0 never meet).
_CACHE_PER_COMPONENT = 1 << 12
_VALUE_NAMES = (
    "usage_trend",
    "engagement_breadth",
    "seat_utilisation",
    "recency",
    "support_load",
    "escalations",
    "sentiment",
    "onboarding_progress",
    "renewal_proximity",
)
_VALUE_INDEX = {n: i for i, n in enumerate(_VALUE_NAMES)}
_UNKNOWN_VALUE = len(_VALUE_NAMES)  # the index for a component the metrics give no value for: always None


@dataclass(slots=True, eq=False)
class _CompiledComponent:
    name: str
    weight: float
    worst: float
    best: float
    unknown: ComponentScore  # its score where its metric is unknown
    cache: dict[tuple[float, float | None, float], tuple[ComponentScore, float]]


_COMPILED: dict[int, tuple[Scorecard, tuple[tuple[_CompiledComponent, int], ...]]] = {}


def _compiled(card: Scorecard) -> tuple[tuple[_CompiledComponent, int], ...]:
    """Per scorecard (by id, holding it so the id stays its): each component with the index of its value."""
    found = _COMPILED.get(id(card))
    if found is None or found[0] is not card:
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        rows = tuple(
            (
                _CompiledComponent(c.name, c.weight, c.worst, c.best, ComponentScore(c.name, None, None, 0.0), {}),
                _VALUE_INDEX.get(c.name, _UNKNOWN_VALUE),
            )
            for c in card.components
        )
        found = _COMPILED[id(card)] = (card, rows)
    return found[1]


def _value_row(m: WindowMetrics, onboarding_days: int) -> tuple[float | None, ...]:
    """``component_values`` in the order of ``_VALUE_NAMES``, and None for ``_UNKNOWN_VALUE``."""
    since, renewal = m.days_since_activity, m.days_to_renewal
    return (
        m.usage_ratio,
        None if since is None else float(m.features_current),
        m.seat_utilisation,
        None if since is None else float(since),
        float(m.tickets_current),
        float(m.escalations_current),
        sentiment(m),
        onboarding_progress(m, onboarding_days),
        None if renewal is None else float(renewal),
        None,
    )


def _component_score(
    name: str, weight: float, worst: float, best: float, value: float, before: float | None, total_weight: float
) -> tuple[ComponentScore, float]:
    """One known component's score and its unrounded contribution."""
    pts = Component(name, weight, worst, best).points(value)
    contribution = pts * weight / total_weight
    change = None if before is None else round(pts - before, 1)
    return ComponentScore(name, round(value, 3), pts, round(contribution, 1), change), contribution


def band_for(score: float, bands: Bands, previous: Band | None = None) -> Band:
    plain = Band.GREEN if score >= bands.green_at else Band.YELLOW if score >= bands.yellow_at else Band.RED
    if previous is None or plain == previous:
        return plain
    h = bands.hysteresis
    # Only move once the score is clearly past the boundary, so a wobbling score does not flap.
    if previous == Band.GREEN:
        sticky = score >= bands.green_at - h
    elif previous == Band.YELLOW:
        sticky = bands.yellow_at - h <= score < bands.green_at + h
    else:
        sticky = score < bands.yellow_at + h
    return previous if sticky else plain
