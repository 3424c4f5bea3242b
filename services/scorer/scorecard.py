"""Scorecards from YAML: components, weights, bands, per-segment overrides and signal thresholds.

The file is validated at start-up; a bad one fails with the file, line and field, e.g.
``scorecard.yaml:12: components.recency.weight: Input should be greater than 0``.
The default file ships in the package (``services/scorer/scorecard.yaml``); ``CHURNWATCH_SCORECARD_PATH``
points at another.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.scorer.detectors import Thresholds
from services.scorer.scoring import KNOWN_COMPONENTS, Bands, Component, Scorecard
from shared.accounts import AccountProfile

DEFAULT_PATH = Path(__file__).with_name("scorecard.yaml")


class ScorecardError(ValueError):
    """The scorecard file cannot be used; the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(_Strict):
    weight: Annotated[float, Field(ge=0)]
    worst: float
    best: float


class BandsSpec(_Strict):
    green_at: Annotated[float, Field(ge=0, le=100)] = 70
    yellow_at: Annotated[float, Field(ge=0, le=100)] = 40
    hysteresis: Annotated[float, Field(ge=0, le=20)] = 3

    @model_validator(mode="after")
    def _ordered(self) -> BandsSpec:
        if self.yellow_at >= self.green_at:
            raise ValueError("yellow_at must be below green_at")
        return self


def _check_names(components: dict[str, ComponentSpec]) -> dict[str, ComponentSpec]:
    unknown = sorted(set(components) - KNOWN_COMPONENTS)
    if unknown:
        raise ValueError(f"unknown component(s) {unknown}; known: {sorted(KNOWN_COMPONENTS)}")
    return components


class SegmentSpec(_Strict):
    name: Annotated[str, Field(min_length=1)]
    match: dict[str, list[str]] = Field(description="profile field -> values, e.g. {plan: [enterprise]}")
    components: dict[str, ComponentSpec] = Field(default_factory=dict)
    bands: BandsSpec | None = None

    _names = field_validator("components")(_check_names)

    @field_validator("match")
    @classmethod
    def _matchable(cls, match: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = sorted(set(match) - {"plan", "touch_tier", "lifecycle_stage"})
        if bad:
            raise ValueError(f"match on {bad}: only plan, touch_tier, lifecycle_stage")
        return match


class ScorecardFile(_Strict):
    version: int = 1
    onboarding_days: Annotated[int, Field(ge=1)] = 30
    key_features: list[str] = Field(default_factory=list)
    bands: BandsSpec = BandsSpec()
    components: dict[str, ComponentSpec]
    segments: list[SegmentSpec] = Field(default_factory=list)
    signals: dict[str, float] = Field(default_factory=dict)

    _names = field_validator("components")(_check_names)

    @field_validator("signals")
    @classmethod
    def _known_thresholds(cls, signals: dict[str, float]) -> dict[str, float]:
        known = {f.name for f in fields(Thresholds)}
        bad = sorted(set(signals) - known)
        if bad:
            raise ValueError(f"unknown signal threshold(s) {bad}; known: {sorted(known)}")
        return signals

    @model_validator(mode="after")
    def _some_weight(self) -> ScorecardFile:
        if sum(c.weight for c in self.components.values()) <= 0:
            raise ValueError("the component weights must not all be zero")
        return self


@dataclass(frozen=True)
class Segment:
    name: str
    match: dict[str, frozenset[str]]
    scorecard: Scorecard

    def matches(self, profile: AccountProfile) -> bool:
        values = profile.model_dump(mode="json")
        return all(str(values.get(k)) in allowed for k, allowed in self.match.items())


@dataclass(frozen=True)
class ScorecardSet:
    """The default scorecard, the per-segment ones (first match wins), and the signal thresholds."""

    default: Scorecard
    segments: tuple[Segment, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    key_features: frozenset[str] = frozenset()

    def for_profile(self, profile: AccountProfile | None) -> Scorecard:
        if profile is not None:
            for s in self.segments:
                if s.matches(profile):
                    return s.scorecard
        return self.default


def _card(name: str, comps: dict[str, ComponentSpec], bands: BandsSpec, onboarding_days: int) -> Scorecard:
    return Scorecard(
        components=tuple(Component(n, c.weight, c.worst, c.best) for n, c in comps.items()),
        bands=Bands(bands.green_at, bands.yellow_at, bands.hysteresis),
        name=name,
        onboarding_days=onboarding_days,
    )


def build_set(spec: ScorecardFile) -> ScorecardSet:
    default = _card("default", spec.components, spec.bands, spec.onboarding_days)
    segments = tuple(
        Segment(
            s.name,
            {k: frozenset(v) for k, v in s.match.items()},
            _card(s.name, {**spec.components, **s.components}, s.bands or spec.bands, spec.onboarding_days),
        )
        for s in spec.segments
    )
    thresholds = Thresholds(**{k: type(getattr(Thresholds(), k))(v) for k, v in spec.signals.items()})
    return ScorecardSet(default, segments, thresholds, frozenset(spec.key_features))


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    node, line = root, None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
            if node is None:  # a missing field: point at its parent mapping
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1 if node is not None else line


def parse_scorecard(text: str, source: str = "scorecard.yaml") -> ScorecardSet:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScorecardError(f"{source}: not valid YAML: {exc}") from exc
    try:
        spec = ScorecardFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc) or 1
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ScorecardError(f"{source}:{line}: {field}: {first['msg']}{more}") from exc
    return build_set(spec)


def load_scorecard(path: str | Path | None = None) -> ScorecardSet:
    p = Path(path) if path else DEFAULT_PATH
    try:
        text = p.read_text()
    except OSError as exc:
        raise ScorecardError(f"{p}: cannot read the scorecard: {exc}") from exc
    return parse_scorecard(text, str(p))
