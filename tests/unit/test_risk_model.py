"""The risk model: hand-computed log-odds and contributions, the peer sentence, the file's round trip and refusals,
the alert's hysteresis, and the shipped default model."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from services.scorer.risk_features import FEATURE_NAMES, FEATURE_VERSION, RiskInputs
from services.scorer.risk_model import (
    RiskAlertState,
    RiskModel,
    RiskModelError,
    Term,
    Thresholds,
    default_model_path,
    estimate,
    explain_estimate,
    load_model,
    model_to_json,
    step_risk_alert,
)

LEVELS = (0.0, 0.5, 1.0)


def tiny_model(**overrides: Any) -> RiskModel:
    fields: dict[str, Any] = dict(
        horizon_days=60,
        terms=(
            Term("urgent", "urgent_28d", "identity", 1.0, 2.0, 0.8),
            Term("nps", "nps_latest", "identity", 7.0, 2.0, -0.5),
            Term("peer", "peer_activity", "identity", 0.5, 0.25, -1.2),
            Term("quiet", "days_since_activity", "log1p", 0.0, 1.0, 0.1),
            Term("seats", "seats", "identity", 10.0, 5.0, 0.2),
        ),
        intercept=-2.0,
        peer_levels=LEVELS,
        peers={
            "growth": {"activity_per_seat_28d": (0.0, 1.0, 3.0), "weekly_activity_per_seat": (0.0, 1.0, 2.0)},
            "*": {"activity_per_seat_28d": (0.0, 2.0, 4.0)},
        },
        weeks_low_level=0.2,
        thresholds=Thresholds(0.2, 0.14, 0.4),
        provenance={"made_by": "test"},
    )
    fields.update(overrides)
    return RiskModel(**fields)


def inputs(plan: str | None = "growth", weekly: tuple[float, ...] = (), **values: float | None) -> RiskInputs:
    known: dict[str, float | None] = dict.fromkeys(FEATURE_NAMES)
    known.update(urgent_28d=5, nps_latest=3, activity_per_seat_28d=0.5, days_since_activity=math.e - 1, seats=5)
    known.update(values)
    return RiskInputs(known, weekly, plan)


def test_log_odds_and_top_three_contributions_by_hand() -> None:
    e = estimate(tiny_model(), inputs())
    # urgent (5-1)/2*0.8 = 1.6; nps (3-7)/2*-0.5 = 1.0; peer: 0.5 is the 25th percentile, (0.25-0.5)/0.25*-1.2 = 1.2;
    # quiet log1p(e-1) = 1 -> 0.1; seats (5-10)/5*0.2 = -0.2
    assert e.probability == pytest.approx(1 / (1 + math.exp(-(-2 + 1.6 + 1.0 + 1.2 + 0.1 - 0.2))))
    assert [c.feature for c in e.contributions] == ["urgent", "peer", "nps"]
    assert [c.value for c in e.contributions] == pytest.approx([1.6, 1.2, 1.0])
    assert e.contributions[0].words == "5 urgent tickets in 28 days"
    assert e.contributions[2].words == "NPS 3"


def test_unknown_values_contribute_nothing_and_lowering_ones_come_last() -> None:
    e = estimate(tiny_model(), inputs(urgent_28d=None, nps_latest=None, activity_per_seat_28d=None, seats=20))
    assert [c.feature for c in e.contributions] == ["seats", "quiet"]  # seats: (20-10)/5*0.2 = 0.4
    assert e.probability == pytest.approx(1 / (1 + math.exp(-(-2 + 0.4 + 0.1))))
    low = estimate(tiny_model(), inputs(urgent_28d=0, nps_latest=10, activity_per_seat_28d=2.0))
    raising = [c.value > 0 for c in low.contributions]
    assert raising == sorted(raising, reverse=True)  # risk-raising first


def test_peer_sentence() -> None:
    weekly = (0.1, 0.2, 0.3, 0.9, 0.1)  # below the plan's 20th percentile (0.4) in 4 weeks, the newest 3 in a row
    e = estimate(tiny_model(), inputs(weekly=weekly))
    assert e.peer == "activity in the bottom 25% of growth-plan accounts, low in 4 of the last 8 weeks"
    e = estimate(tiny_model(), inputs(weekly=weekly, activity_per_seat_28d=0.2))
    assert e.peer == "activity in the bottom 10% of growth-plan accounts for 3 weeks"
    e = estimate(tiny_model(), inputs(plan="unknown-plan", activity_per_seat_28d=3.6))
    assert e.peer == "activity in the top 10% of accounts"  # the all-plans reference
    no_fallback = tiny_model(peers={"growth": tiny_model().peers["growth"]})
    assert estimate(no_fallback, inputs(plan=None)).peer is None


def test_explanation_line() -> None:
    e = estimate(tiny_model(), inputs(weekly=(0.1, 0.2, 0.3), activity_per_seat_28d=0.2))
    assert explain_estimate(e, 60) == (
        f"churn risk {e.probability * 100:.0f}% within 60 days: activity in the bottom 10% of growth-plan accounts "
        "for 3 weeks; 5 urgent tickets in 28 days; NPS 3"
    )
    calm = estimate(tiny_model(intercept=-9.0), inputs(urgent_28d=0, nps_latest=10, activity_per_seat_28d=2.9))
    assert explain_estimate(calm, 60).startswith("churn risk <1% within 60 days: activity in the top")
    assert "(lowers it)" in explain_estimate(calm, 60)


def test_file_round_trip(tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "model.json"
    path.write_text(model_to_json(model))
    again = load_model(path)
    assert again == model
    assert model_to_json(again) == path.read_text()
    assert estimate(again, inputs()) == estimate(model, inputs())


def _body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(model_to_json(tiny_model()))
    return body


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda b: b.update(format="something-else"), "not a Churnwatch risk model"),
        (lambda b: b.update(version=2), "format version 2"),
        (lambda b: b.update(feature_version=FEATURE_VERSION + 1), "recalibrate"),
        (lambda b: b.pop("intercept"), "missing field(s) intercept"),
        (lambda b: b.update(colour="blue"), "unexpected field(s) colour"),
        (lambda b: b["terms"][1].update(source="shoe_size"), "terms[1].source: unknown feature 'shoe_size'"),
        (lambda b: b["terms"][0].update(scale=0), "terms[0].scale: must be greater than 0"),
        (lambda b: b["terms"][0].update(transform="cube"), "terms[0].transform: unknown transform 'cube'"),
        (lambda b: b["terms"][0].pop("mean"), "terms[0]: missing field(s) mean"),
        (lambda b: b["thresholds"].update(exit=0.9), "thresholds: expected 0 < exit <= enter"),
        (lambda b: b["peers"]["growth"].update(activity_per_seat_28d=[3, 1, 0]), "must be in ascending order"),
        (lambda b: b["peers"]["*"].update(activity_per_seat_28d=[0, 1]), "expected 3 quantiles"),
        (lambda b: b["provenance"].pop("made_by"), "provenance: expected an object with made_by"),
    ],
)
def test_refuses_a_bad_file_naming_it_and_the_problem(tmp_path: Path, change: Any, problem: str) -> None:
    body = _body()
    change(body)
    path = tmp_path / "bad-model.json"
    path.write_text(json.dumps(body))
    with pytest.raises(RiskModelError) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_refuses_a_missing_or_corrupt_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(RiskModelError, match=r"nowhere\.json: cannot read the risk model"):
        load_model(missing)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "churnwatch-risk-model", ')
    with pytest.raises(RiskModelError, match=r"corrupt\.json: not valid JSON"):
        load_model(corrupt)


def _raised(series: list[float], t: Thresholds) -> tuple[list[int], RiskAlertState]:
    state, raised_days = RiskAlertState(), []
    for day, p in enumerate(series):
        state, raised = step_risk_alert(state, p, t)
        if raised:
            raised_days.append(day)
    return raised_days, state


def test_alert_hysteresis() -> None:
    t = Thresholds(enter=0.2, exit=0.14, critical=0.4, clear_after_days=3)
    series = [0.1, 0.25, 0.3, 0.15, 0.1, 0.1, 0.16, 0.1, 0.1, 0.1, 0.22, 0.05]
    raised, state = _raised(series, t)
    # opens at day 1; 0.1 x2 then 0.16 (>= exit) resets the count; three lows (7-9) clear it; day 10 opens again
    assert raised == [1, 10]
    assert state == RiskAlertState(True, 1, 1)


def test_a_standing_alert_is_judged_afresh_after_renew_after_days() -> None:
    t = Thresholds(enter=0.2, exit=0.14, critical=0.4, renew_after_days=5)
    assert _raised([0.3] * 12, t)[0] == [0, 5, 10]  # still high: raised again every 5 closes
    assert _raised([0.3, 0.16, 0.16, 0.16, 0.16, 0.16, 0.3], t) == ([0, 6], RiskAlertState(True, 0, 0))
    # between exit and enter when it expires: closed, not raised
    assert _raised([0.3, 0.16, 0.16, 0.16, 0.16, 0.16], t) == ([0], RiskAlertState())


def test_the_shipped_default_model_loads_and_scores_fast() -> None:
    model = load_model(default_model_path())
    assert model.feature_version == FEATURE_VERSION
    assert "4242" in json.dumps(model.provenance["data"])  # made from a base that is not the held-out one
    assert "20261201" not in model.provenance["made_by"].split("--evaluate-on")[0]
    x = inputs(weekly=(0.1,) * 8, features_7d=2, seat_use_7d=0.2)
    started = time.perf_counter()
    for _ in range(1000):
        e = estimate(model, x)
    per_call = (time.perf_counter() - started) / 1000
    assert 0 < e.probability < 1 and len(e.contributions) == 3
    assert per_call < 200e-6  # ~10 us here; generous for a loaded CI machine
