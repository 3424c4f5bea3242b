"""The churn-risk model: a versioned JSON file of logistic-regression terms, read and applied. Pure, stdlib only.

``estimate`` turns one account's ``RiskInputs`` into the probability that it churns within ``horizon_days``:
each term takes a raw feature (or a peer-relative one: the percentile of a level among accounts of the same plan,
against reference quantiles stored in the file, or the number of recent weeks low against that plan), transforms
it, standardises it with the training mean and scale, and adds ``coefficient * z`` to the log-odds. An unknown
value contributes nothing (z = 0: read as the average account; known-flag terms carry what not knowing says).
Each estimate keeps its three largest contributions and a sentence comparing the account with its peers.

The file is written by ``churnwatch calibrate`` (services/calibrate/) and read once at start-up by ``load_model``,
which refuses anything it does not fully understand, naming the file and the problem.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from services.scorer.risk_features import RiskInputs, describe_feature
from services.scorer.risk_model_file import (
    ALL_PLANS,
    PEER_SOURCES,
    WEEKLY_REFERENCE,
    WEEKS_LOW,
    RiskModel,
    Term,
    Thresholds,
    model_to_json,
    parse_model,
)

__all__ = [
    "Contribution",
    "RiskAlertState",
    "RiskEstimate",
    "RiskModel",
    "RiskModelError",
    "Term",
    "Thresholds",
    "default_model_path",
    "estimate",
    "explain_estimate",
    "load_model",
    "model_to_json",
    "probability",
    "step_risk_alert",
]
PEER_WORDS = {"peer_activity": "activity", "peer_seat_use": "seat use", "peer_breadth": "feature breadth"}


class RiskModelError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Contribution:
    feature: str  # the term's name
    words: str
    value: float  # in log-odds, against the average account


@dataclass(frozen=True)
class RiskEstimate:
    probability: float
    contributions: tuple[Contribution, ...]  # the top 3 by |value|, risk-raising first
    peer: str | None  # e.g. "activity in the bottom 8% of growth-plan accounts for 5 weeks"


def default_model_path() -> Path:
    return Path(__file__).with_name("risk_model_default.json")


def load_model(path: Path) -> RiskModel:
    try:
        text = path.read_text()
    except OSError as exc:
        raise RiskModelError(f"{path}: cannot read the risk model: {exc.strerror or exc}") from None
    try:
        return parse_model(text)
    except ValueError as exc:
        raise RiskModelError(f"{path}: {exc}") from None


def percentile(quantiles: tuple[float, ...], levels: tuple[float, ...], x: float) -> float:
    """Where ``x`` falls among the reference: linear between the stored quantiles, 0 below, 1 above."""
    i = bisect_right(quantiles, x)
    if i == 0:
        return levels[0]
    if i == len(quantiles):
        return levels[-1]
    lo, hi = quantiles[i - 1], quantiles[i]
    return levels[i - 1] + (levels[i] - levels[i - 1]) * (x - lo) / (hi - lo)


def peer_reference(model: RiskModel, plan: str | None) -> tuple[str, dict[str, tuple[float, ...]]] | None:
    """The plan's reference quantiles and the words for its accounts, else the all-plans fallback."""
    if plan is not None and plan in model.peers:
        return f"{plan}-plan accounts", model.peers[plan]
    if ALL_PLANS in model.peers:
        return "accounts", model.peers[ALL_PLANS]
    return None


def peer_values(model: RiskModel, inputs: RiskInputs) -> tuple[dict[str, float | None], int]:
    """The derived sources (percentiles among peers, weeks low) and the run of low weeks ending now."""
    out: dict[str, float | None] = dict.fromkeys(PEER_SOURCES)
    out[WEEKS_LOW] = None
    found = peer_reference(model, inputs.plan)
    if found is None:
        return out, 0
    reference = found[1]
    for source, feature in PEER_SOURCES.items():
        x = inputs.values.get(feature)
        if x is not None and feature in reference:
            out[source] = percentile(reference[feature], model.peer_levels, x)
    weekly = reference.get(WEEKLY_REFERENCE)
    run = 0
    if weekly is not None and inputs.weekly_activity_per_seat:
        low = percentile_value(weekly, model.peer_levels, model.weeks_low_level)
        flags = [w < low for w in inputs.weekly_activity_per_seat]
        out[WEEKS_LOW] = float(sum(flags))
        while run < len(flags) and flags[run]:
            run += 1
    return out, run


def percentile_value(quantiles: tuple[float, ...], levels: tuple[float, ...], level: float) -> float:
    """The value at ``level`` (the inverse of ``percentile``)."""
    i = min(max(1, bisect_right(levels, level)), len(levels) - 1)
    lo, hi = levels[i - 1], levels[i]
    return quantiles[i - 1] + (quantiles[i] - quantiles[i - 1]) * (level - lo) / (hi - lo)


def term_values(model: RiskModel, inputs: RiskInputs) -> list[float | None]:
    """Each term's transformed value before standardisation (None: unknown), what calibration fits on."""
    derived, _ = peer_values(model, inputs)
    out: list[float | None] = []
    for _, source, transform, _, _, _ in model._compiled:
        x = derived[source] if source in derived else inputs.values.get(source)
        out.append(None if x is None else transform(x))
    return out


def estimate(model: RiskModel, inputs: RiskInputs) -> RiskEstimate:
    derived, run = peer_values(model, inputs)
    values = inputs.values
    logit = model.intercept
    parts: list[tuple[float, str, str, float]] = []
    for name, source, transform, mean, inv_scale, coefficient in model._compiled:
        x = derived[source] if source in derived else values.get(source)
        if x is None:
            continue
        value = coefficient * (transform(x) - mean) * inv_scale
        logit += value
        parts.append((value, name, source, x))
    parts.sort(key=lambda p: -abs(p[0]))
    top = sorted(parts[:3], key=lambda p: (p[0] <= 0, -abs(p[0])))
    peer = peer_sentence(model, inputs.plan, derived, run)
    contributions = tuple(Contribution(name, _words(source, x, peer), v) for v, name, source, x in top)
    return RiskEstimate(_sigmoid(logit), contributions, peer)


def probability(model: RiskModel, inputs: RiskInputs) -> float:
    """``estimate(model, inputs).probability``, without wording the contributions (a day close reads only this)."""
    derived, _ = peer_values(model, inputs)
    values = inputs.values
    logit = model.intercept
    for _, source, transform, mean, inv_scale, coefficient in model._compiled:
        x = derived[source] if source in derived else values.get(source)
        if x is not None:
            logit += coefficient * (transform(x) - mean) * inv_scale
    return _sigmoid(logit)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _rank_words(p: float) -> str:
    if p < 0.5:
        return f"in the bottom {max(1, math.ceil(p * 100))}%"
    return f"in the top {max(1, math.ceil((1 - p) * 100))}%"


def peer_sentence(model: RiskModel, plan: str | None, derived: dict[str, float | None], run: int) -> str | None:
    """E.g. "activity in the bottom 8% of growth-plan accounts for 5 weeks"; None without a reference."""
    found = peer_reference(model, plan)
    p = derived.get("peer_activity")
    if found is None or p is None:
        return None
    sentence = f"activity {_rank_words(p)} of {found[0]}"
    weeks_low = int(derived.get(WEEKS_LOW) or 0)
    if run >= 2 and p < model.weeks_low_level:
        sentence += f" for {run} weeks"
    elif weeks_low >= 2:
        sentence += f", low in {weeks_low} of the last 8 weeks"
    return sentence


def _words(source: str, x: float, peer: str | None) -> str:
    if source == "peer_activity" and peer is not None:
        return peer
    if source in PEER_WORDS:
        return f"{PEER_WORDS[source]} {_rank_words(x)} of peers"
    if source == "peer_tickets":
        return f"ticket load {_rank_words(x)} of peers"
    if source == WEEKS_LOW:
        if peer is not None and "week" in peer:
            return peer  # the peer sentence says it already
        weeks = round(x)
        return f"activity low against peers in {weeks} of the last 8 weeks" if weeks else "no week low against peers"
    return describe_feature(source, x)


def explain_estimate(e: RiskEstimate, horizon_days: int) -> str:
    """One line, e.g. "churn risk 23% within 60 days: activity in the bottom 8% of growth-plan accounts for 5
    weeks; 3 urgent tickets in 28 days". What lowers the risk is named only when nothing raises it."""
    raising = [c.words for c in e.contributions if c.value > 0]
    parts = [e.peer] if e.peer is not None else []
    parts += [w for w in raising if w not in parts]
    if not raising:
        parts += [f"{c.words} (lowers it)" for c in e.contributions if c.words not in parts]
    percent = e.probability * 100
    shown = f"{percent:.0f}%" if percent >= 1 else "<1%"
    return f"churn risk {shown} within {horizon_days} days: " + ("; ".join(parts) or "no risk factors")


@dataclass(frozen=True)
class RiskAlertState:
    """One account's churn-risk alert between day closes: open or not, closes in a row below exit, closes open."""

    open: bool = False
    days_below_exit: int = 0
    days_open: int = 0


def step_risk_alert(state: RiskAlertState, probability: float, t: Thresholds) -> tuple[RiskAlertState, bool]:
    """The alert at one day close: (next state, whether a new alert is raised). Opens at ``enter`` when none is
    open; clears after ``clear_after_days`` closes in a row below ``exit``. An alert stands for
    ``renew_after_days`` closes: then it is judged afresh, raised again if the estimate is still at ``enter`` (the
    estimate looks ``horizon_days`` ahead, so a month-old warning is stale), else closed."""
    if state.open:
        age = state.days_open + 1
        if age < t.renew_after_days:
            if probability >= t.exit:
                return RiskAlertState(True, 0, age), False
            below = state.days_below_exit + 1
            return (RiskAlertState() if below >= t.clear_after_days else RiskAlertState(True, below, age)), False
    if probability >= t.enter:
        return RiskAlertState(True, 0, 0), True
    return RiskAlertState(), False
