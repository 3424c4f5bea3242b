"""Fitting the churn-risk model on labelled snapshots: peer references, standardisation, L2 logistic regression.

Why logistic regression (scikit-learn's ``LogisticRegression`` after ``StandardScaler``, L2) and not gradient
boosting: its probabilities come out calibrated for a proper scoring loss without a separate calibration step
(what a threshold "20% churn risk" must mean); each coefficient times a standardised value *is* that feature's
contribution to the log-odds, so every estimate explains itself in three named parts; the whole model is a few
dozen numbers in a JSON file that the scorer applies in pure Python (no scikit-learn, numpy or pickles at
scoring time); and lbfgs on fixed data is deterministic, so the same data gives the same file. What trees would
add (interactions, thresholds) is covered by the transforms and the peer-relative terms (percentiles among the
accounts of the same plan, weeks low against them), which carry the level-against-peers signal that matters.

Numbers written to the file are rounded to 6 significant digits: the same data gives the same bytes, and the
last bits of a BLAS reduction never show.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from services.backtest.measures import quantile
from services.calibrate.snapshots import Snapshot
from services.scorer.risk_features import FEATURE_NAMES
from services.scorer.risk_model import RiskModel, Term, Thresholds, term_values
from services.scorer.risk_model_file import ALL_PLANS, PEER_SOURCES, WEEKLY_REFERENCE

PEER_LEVELS = tuple(round(i / 20, 2) for i in range(21))
WEEKS_LOW_LEVEL = 0.2
MIN_PLAN_ROWS = 200  # fewer snapshots than this of a plan: its accounts are compared with all plans
DEFAULT_C = 0.3
PLACEHOLDER_THRESHOLDS = Thresholds(enter=0.5, exit=0.35, critical=0.9)

# (source, transform): what the model reads. Levels against peers (percentiles among the accounts of the same plan,
# weeks low against them) carry the signal and keep their meaning across bases; raw per-seat levels, seat counts
# and many collinear windows fitted a little better on the weeks they were fitted on and worse on later months, and
# made explanations contradict each other (one activity term raising risk, another lowering it).
DEFAULT_TERMS: tuple[tuple[str, str], ...] = (
    ("peer_activity", "identity"),
    ("peer_seat_use", "identity"),
    ("peer_breadth", "identity"),
    ("peer_tickets", "identity"),
    ("weeks_low", "identity"),
    ("days_to_renewal", "within:0:60"),
    ("nps_latest", "identity"),
    ("nps_known", "identity"),
)


def sig6(x: float) -> float:
    return float(f"{x:.6g}")


def _quantiles(values: list[float]) -> tuple[float, ...]:
    ranked = sorted(values)
    return tuple(sig6(q) for level in PEER_LEVELS if (q := quantile(ranked, level)) is not None)


def peer_references(snapshots: Sequence[Snapshot]) -> dict[str, dict[str, tuple[float, ...]]]:
    """Per plan (and ``*`` for all plans): quantiles of each peer feature and of the newest week's activity per
    seat, over the snapshots. A plan with fewer than ``MIN_PLAN_ROWS`` snapshots gets no reference of its own."""
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    pools: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    rows: dict[str, int] = defaultdict(int)
    for s in snapshots:
        for plan in (ALL_PLANS, s.plan) if s.plan is not None else (ALL_PLANS,):
            rows[plan] += 1
            pool = pools[plan]
            for feature in PEER_SOURCES.values():
                x = s.values[index[feature]]
                if x is not None:
                    pool[feature].append(x)
            if s.weekly:
                pool[WEEKLY_REFERENCE].append(s.weekly[0])
    out = {}
    for plan in sorted(pools, key=lambda p: (p != ALL_PLANS, p)):
        if rows[plan] >= MIN_PLAN_ROWS or plan == ALL_PLANS:
            out[plan] = {k: _quantiles(v) for k, v in sorted(pools[plan].items()) if len(v) >= 2}
    return out


def _skeleton(
    peers: dict[str, dict[str, tuple[float, ...]]], terms: Sequence[tuple[str, str]], horizon_days: int
) -> RiskModel:
    """A model that only transforms (mean 0, scale 1, no weights): what the design matrix is read with."""
    return RiskModel(
        horizon_days=horizon_days,
        terms=tuple(Term(f"{src}:{tf}" if tf != "identity" else src, src, tf, 0.0, 1.0, 0.0) for src, tf in terms),
        intercept=0.0,
        peer_levels=PEER_LEVELS,
        peers=peers,
        weeks_low_level=WEEKS_LOW_LEVEL,
        thresholds=PLACEHOLDER_THRESHOLDS,
        provenance={"made_by": "skeleton"},
    )


def design_matrix(model: RiskModel, snapshots: Sequence[Snapshot]) -> np.ndarray:
    """Rows of term values (NaN: unknown), read with the scorer's own code."""
    rows = [[np.nan if v is None else v for v in term_values(model, s.inputs())] for s in snapshots]
    return np.asarray(rows, dtype=float)


@dataclass(frozen=True)
class FittedModel:
    model: RiskModel  # thresholds and provenance still placeholders
    rows: int
    positives: int


def fit_model(
    snapshots: Sequence[Snapshot],
    *,
    horizon_days: int,
    c: float = DEFAULT_C,
    terms: Sequence[tuple[str, str]] = DEFAULT_TERMS,
) -> FittedModel:
    labels = np.asarray([s.label for s in snapshots], dtype=int)
    if labels.min(initial=1) == labels.max(initial=0):
        raise ValueError("the snapshots need both churned and retained accounts to fit a model")
    skeleton = _skeleton(peer_references(snapshots), terms, horizon_days)
    x = design_matrix(skeleton, snapshots)
    scaler = StandardScaler().fit(x)  # NaNs are disregarded in fit and kept in transform
    z = np.nan_to_num(scaler.transform(x), nan=0.0)  # unknown = the average account: contributes nothing
    regression = LogisticRegression(C=c, max_iter=5000, tol=1e-8).fit(z, labels)
    fitted_terms = tuple(
        Term(t.name, t.source, t.transform, sig6(mean), sig6(scale), sig6(coefficient))
        for t, mean, scale, coefficient in zip(
            skeleton.terms, scaler.mean_, scaler.scale_, regression.coef_[0], strict=True
        )
    )
    model = RiskModel(
        horizon_days=horizon_days,
        terms=fitted_terms,
        intercept=sig6(float(regression.intercept_[0])),
        peer_levels=PEER_LEVELS,
        peers=skeleton.peers,
        weeks_low_level=WEEKS_LOW_LEVEL,
        thresholds=PLACEHOLDER_THRESHOLDS,
        provenance={"made_by": "fit_model"},
    )
    return FittedModel(model, len(snapshots), int(labels.sum()))


def library_versions() -> dict[str, str]:
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
