"""The churn-risk model's file: what it holds, how it is written and how it is read. Pure, stdlib only.

A JSON object with a format name and version, the feature version it was made for (services/scorer/
risk_features.py), the logistic-regression terms (source feature, transform, training mean and scale,
coefficient), the intercept, reference quantiles per plan for the peer-relative features, the alert thresholds
and how it was made. ``model_to_json`` writes keys in a fixed order (the same model gives the same bytes);
``parse_model`` refuses a field missing, extra or out of range, naming it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from services.scorer.risk_features import FEATURE_NAMES, FEATURE_VERSION

FORMAT_NAME = "churnwatch-risk-model"
FORMAT_VERSION = 1
ALL_PLANS = "*"  # the peer reference for a plan the file does not know
PEER_SOURCES = {  # derived source -> the raw feature whose percentile among the plan's accounts it is
    "peer_activity": "activity_per_seat_28d",
    "peer_seat_use": "seat_use_7d",
    "peer_breadth": "features_7d",
    "peer_tickets": "tickets_per_seat_90d",
}
WEEKLY_REFERENCE = "weekly_activity_per_seat"
WEEKS_LOW = "weeks_low"
SOURCES = frozenset(FEATURE_NAMES) | frozenset(PEER_SOURCES) | {WEEKS_LOW}


def _log_ratio(x: float) -> float:
    return math.log(min(20.0, max(0.05, x)))


def _transform(spec: str) -> Callable[[float], float]:
    """``identity``, ``log1p`` (of x >= 0), ``log_ratio`` (log of x clipped to 0.05-20), ``within:LOW:HIGH`` (1 if
    LOW <= x <= HIGH, else 0)."""
    if spec == "identity":
        return float
    if spec == "log1p":
        return lambda x: math.log1p(max(0.0, x))
    if spec == "log_ratio":
        return _log_ratio
    if spec.startswith("within:"):  # within:LOW:HIGH, both included
        low, high = (float(x) for x in spec.removeprefix("within:").split(":"))
        return lambda x: 1.0 if low <= x <= high else 0.0
    raise ValueError(f"unknown transform {spec!r}")


@dataclass(frozen=True)
class Term:
    name: str
    source: str  # a FEATURE_NAMES entry, a PEER_SOURCES key or "weeks_low"
    transform: str
    mean: float  # of the transformed value over the training rows
    scale: float
    coefficient: float  # log-odds per standard deviation


@dataclass(frozen=True)
class Thresholds:
    enter: float  # a risk alert opens when the estimate reaches this and none is open
    exit: float  # and clears once the estimate stayed below this for clear_after_days day closes
    critical: float
    clear_after_days: int = 3
    renew_after_days: int = 30  # an alert still open after this many closes is judged afresh (raised again)


@dataclass(frozen=True)
class RiskModel:
    horizon_days: int
    terms: tuple[Term, ...]
    intercept: float
    peer_levels: tuple[float, ...]  # the probability levels of every reference quantile list, ascending
    peers: dict[str, dict[str, tuple[float, ...]]]  # plan (or "*") -> PEER_SOURCES value / weekly -> quantiles
    weeks_low_level: float  # a week is low below this quantile of the plan's weekly activity per seat
    thresholds: Thresholds
    provenance: dict[str, Any]
    feature_version: int = FEATURE_VERSION
    _compiled: tuple[tuple[str, str, Callable[[float], float], float, float, float], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        compiled = tuple(
            (t.name, t.source, _transform(t.transform), t.mean, 1.0 / t.scale, t.coefficient) for t in self.terms
        )
        object.__setattr__(self, "_compiled", compiled)


_TOP_KEYS = (
    "format", "version", "feature_version", "horizon_days", "intercept", "terms", "peer_levels", "peers",
    "weeks_low_level", "thresholds", "provenance",
)  # fmt: skip


def model_to_json(model: RiskModel) -> str:
    """The file's text: keys in a fixed order, so the same model always gives the same bytes."""
    body = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "feature_version": model.feature_version,
        "horizon_days": model.horizon_days,
        "intercept": model.intercept,
        "terms": [vars(t) for t in model.terms],
        "peer_levels": list(model.peer_levels),
        "peers": {plan: {k: list(q) for k, q in ref.items()} for plan, ref in model.peers.items()},
        "weeks_low_level": model.weeks_low_level,
        "thresholds": vars(model.thresholds),
        "provenance": model.provenance,
    }
    return json.dumps(body, indent=1) + "\n"


def _exact_keys(obj: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"{where or 'the file'}: expected an object")
    missing = [k for k in keys if k not in obj]
    extra = sorted(set(obj) - set(keys))
    at = f"{where}: " if where else ""
    if missing:
        raise ValueError(f"{at}missing field(s) {', '.join(missing)}")
    if extra:
        raise ValueError(f"{at}unexpected field(s) {', '.join(extra)}")
    return obj


def _number(x: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        raise ValueError(f"{where}: expected a finite number, got {x!r}")
    if positive and x <= 0:
        raise ValueError(f"{where}: must be greater than 0, got {x!r}")
    return float(x)


def _ascending(x: Any, where: str) -> tuple[float, ...]:
    if not isinstance(x, list) or len(x) < 2:
        raise ValueError(f"{where}: expected a list of at least 2 numbers")
    values = tuple(_number(v, f"{where}[{i}]") for i, v in enumerate(x))
    if any(b < a for a, b in pairwise(values)):
        raise ValueError(f"{where}: must be in ascending order")
    return values


def _term(obj: Any, where: str) -> Term:
    t = _exact_keys(obj, ("name", "source", "transform", "mean", "scale", "coefficient"), where)
    if not isinstance(t["name"], str) or not t["name"]:
        raise ValueError(f"{where}.name: expected a non-empty string")
    if t["source"] not in SOURCES:
        raise ValueError(f"{where}.source: unknown feature {t['source']!r}")
    try:
        _transform(t["transform"] if isinstance(t["transform"], str) else repr(t["transform"]))
    except ValueError as exc:
        raise ValueError(f"{where}.transform: {exc}") from None
    numbers = {k: _number(t[k], f"{where}.{k}", positive=k == "scale") for k in ("mean", "scale", "coefficient")}
    return Term(t["name"], t["source"], t["transform"], **numbers)


def _peers(obj: Any, levels: tuple[float, ...]) -> dict[str, dict[str, tuple[float, ...]]]:
    if not isinstance(obj, dict) or not obj:
        raise ValueError("peers: expected an object of plans")
    known = {*PEER_SOURCES.values(), WEEKLY_REFERENCE}
    out = {}
    for plan, ref in obj.items():
        if not isinstance(ref, dict):
            raise ValueError(f"peers.{plan}: expected an object")
        if unknown := sorted(set(ref) - known):
            raise ValueError(f"peers.{plan}: unknown reference(s) {', '.join(unknown)}")
        out[plan] = {k: _ascending(q, f"peers.{plan}.{k}") for k, q in ref.items()}
        if wrong := [k for k, q in out[plan].items() if len(q) != len(levels)]:
            raise ValueError(f"peers.{plan}.{wrong[0]}: expected {len(levels)} quantiles, one per peer level")
    return out


def _thresholds(obj: Any) -> Thresholds:
    t = _exact_keys(obj, ("enter", "exit", "critical", "clear_after_days", "renew_after_days"), "thresholds")
    enter, exit_, critical = (_number(t[k], f"thresholds.{k}") for k in ("enter", "exit", "critical"))
    if not 0 < exit_ <= enter <= critical <= 1:
        raise ValueError("thresholds: expected 0 < exit <= enter <= critical <= 1")
    days = {k: t[k] for k in ("clear_after_days", "renew_after_days")}
    for k, n in days.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"thresholds.{k}: expected a whole number >= 1")
    return Thresholds(enter, exit_, critical, **days)


def parse_model(text: str) -> RiskModel:
    """The model in a file's text; ValueError naming the field and the problem."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT_NAME:
        raise ValueError(f"not a Churnwatch risk model (format must be {FORMAT_NAME!r})")
    if body.get("version") != FORMAT_VERSION:
        raise ValueError(f"format version {body.get('version')!r}, this Churnwatch reads version {FORMAT_VERSION}")
    if body.get("feature_version") != FEATURE_VERSION:
        raise ValueError(
            f"made for feature version {body.get('feature_version')!r}, this Churnwatch computes version "
            f"{FEATURE_VERSION}: recalibrate it with `churnwatch calibrate`"
        )
    b = _exact_keys(body, _TOP_KEYS, "")
    horizon = b["horizon_days"]
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError("horizon_days: expected a whole number >= 1")
    if not isinstance(b["terms"], list) or not b["terms"]:
        raise ValueError("terms: expected a non-empty list")
    levels = _ascending(b["peer_levels"], "peer_levels")
    if levels[0] < 0 or levels[-1] > 1 or len(set(levels)) != len(levels):
        raise ValueError("peer_levels: expected distinct probabilities from 0 to 1")
    if not isinstance(b["provenance"], dict) or "made_by" not in b["provenance"]:
        raise ValueError("provenance: expected an object with made_by")
    return RiskModel(
        horizon_days=horizon,
        terms=tuple(_term(t, f"terms[{i}]") for i, t in enumerate(b["terms"])),
        intercept=_number(b["intercept"], "intercept"),
        peer_levels=levels,
        peers=_peers(b["peers"], levels),
        weeks_low_level=_number(b["weeks_low_level"], "weeks_low_level"),
        thresholds=_thresholds(b["thresholds"]),
        provenance=b["provenance"],
    )
