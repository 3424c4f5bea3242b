import pytest

from services.scorer.explain import explain
from services.scorer.scoring import DEFAULT_SCORECARD, Bands, Component, band_for, score_account, sentiment
from shared.signals import Band
from tests.unit.factories import metrics


@pytest.mark.parametrize(
    ("component", "value", "points"),
    [
        (Component("x", 1, worst=0.5, best=1.0), 0.75, 50.0),
        (Component("x", 1, worst=0.5, best=1.0), 2.0, 100.0),
        (Component("x", 1, worst=0.5, best=1.0), 0.1, 0.0),
        (Component("x", 1, worst=14, best=2), 8, 50.0),  # lower is better
    ],
)
def test_component_maps_linearly_and_clamps(component: Component, value: float, points: float) -> None:
    assert component.points(value) == points


def test_healthy_account_is_green_and_explained() -> None:
    h = score_account(metrics())
    assert h.score == 100.0 and h.band is Band.GREEN
    assert {c.name for c in h.components} == {c.name for c in DEFAULT_SCORECARD.components}
    assert sum(c.contribution for c in h.components) == pytest.approx(h.score, abs=0.5)
    assert set(h.missing) == {"seat_utilisation", "sentiment", "onboarding_progress", "renewal_proximity"}


def test_sliding_account_is_red() -> None:
    h = score_account(metrics(activity_current=3, tickets_current=5, escalations_current=2, days_since_activity=4))
    assert h.band is Band.RED


def test_missing_metric_is_left_out_not_scored_neutral() -> None:
    h = score_account(metrics(has_baseline=False, tickets_current=6, escalations_current=2, features_current=0))
    trend = h.component("usage_trend")
    assert trend is not None and trend.points is None and trend.contribution == 0
    assert h.score < 40  # the known components carry the whole weight


def test_every_component_can_be_scored() -> None:
    m = metrics(
        seats_purchased=10, nps_latest=3, csat_avg=2.0, account_age_days=40, activated=False, days_to_renewal=20
    )
    h = score_account(m, points_7d_ago={"usage_trend": 50.0, "sentiment": 100.0})
    assert h.missing == ()
    assert h.component("seat_utilisation").points == 50.0  # type: ignore[union-attr]
    assert h.component("onboarding_progress").points == 0.0  # type: ignore[union-attr]
    assert h.component("usage_trend").change_7d == 50.0  # type: ignore[union-attr]
    assert h.component("sentiment").change_7d == -100.0  # type: ignore[union-attr]
    assert sentiment(m) == pytest.approx((0.3 + 0.25) / 2)


def test_explanation_says_why_in_one_line() -> None:
    m = metrics(activity_current=4.8, urgent_current=3, escalations_current=3, tickets_current=3)
    h = score_account(m)
    line = explain(m, h, score_7d_ago=h.score + 30)
    assert line.startswith(f"health {h.score:.0f} ({h.band}, -30 in 7 days): ")
    assert "usage -52% vs baseline; 3 urgent tickets this week" in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("score", "previous", "expected"),
    [
        (69.0, None, Band.YELLOW),
        (69.0, Band.GREEN, Band.GREEN),  # within hysteresis: stays
        (66.0, Band.GREEN, Band.YELLOW),
        (71.0, Band.YELLOW, Band.YELLOW),
        (74.0, Band.YELLOW, Band.GREEN),
        (41.0, Band.RED, Band.RED),
        (44.0, Band.RED, Band.YELLOW),
        (10.0, Band.GREEN, Band.RED),
    ],
)
def test_band_hysteresis(score: float, previous: Band | None, expected: Band) -> None:
    assert band_for(score, Bands(), previous) is expected


def test_a_wobbling_score_does_not_flap() -> None:
    band = Band.GREEN
    changes = 0
    for score in [71, 68, 70, 69, 71, 68.5, 70, 69]:
        new = band_for(score, Bands(), band)
        changes += new is not band
        band = new
    assert changes == 0


def test_explanation_counts_read_as_english() -> None:
    m = metrics(urgent_current=1, escalations_current=2, days_since_activity=4)
    line = explain(m, score_account(m))
    assert "1 urgent ticket this week" in line
    assert "1 escalation this week" in line
    assert "last active 4 days ago" in line
