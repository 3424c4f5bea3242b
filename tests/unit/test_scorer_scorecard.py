from pathlib import Path

import pytest

from services.scorer.scorecard import DEFAULT_PATH, ScorecardError, load_scorecard, parse_scorecard
from shared.accounts import AccountProfile, TouchTier

GOOD = """\
components:
  usage_trend: {weight: 0.5, worst: 0.5, best: 1.0}
  recency: {weight: 0.5, worst: 14, best: 2}
segments:
  - name: big
    match: {touch_tier: [high]}
    components:
      recency: {weight: 0.9, worst: 7, best: 1}
signals:
  inactivity_days: 3
"""


def test_the_packaged_scorecard_loads() -> None:
    cards = load_scorecard(DEFAULT_PATH)
    assert {c.name for c in cards.default.components} >= {"usage_trend", "sentiment", "renewal_proximity"}
    assert cards.default.bands.green_at == 70 and cards.default.bands.yellow_at == 40


def test_segments_override_components_and_signals_are_configurable() -> None:
    cards = parse_scorecard(GOOD)
    big = AccountProfile(account_id="a", name="A", touch_tier=TouchTier.HIGH)
    small = AccountProfile(account_id="b", name="B")
    assert cards.for_profile(big).name == "big"
    assert next(c for c in cards.for_profile(big).components if c.name == "recency").weight == 0.9
    assert cards.for_profile(small).name == "default" and cards.for_profile(None).name == "default"
    assert cards.thresholds.inactivity_days == 3 and isinstance(cards.thresholds.inactivity_days, int)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("components:\n  recency: {weight: -1, worst: 14, best: 2}\n", "x.yaml:2: components.recency.weight:"),
        ("components:\n  recency: {weight: 1, worst: 14}\n", "x.yaml:2: components.recency.best: Field required"),
        ("version: 1\ncomponents:\n  usage: {weight: 1, worst: 0, best: 1}\n", "x.yaml:3: components:"),
        (GOOD.replace("touch_tier: [high]", "region: [eu]"), "x.yaml:6: segments.0.match:"),
        (GOOD + "bands: {green_at: 30, yellow_at: 40}\n", "x.yaml:11: bands:"),
        (GOOD.replace("inactivity_days", "inactive_days"), "x.yaml:10: signals:"),
        ("components: [\n", "x.yaml: not valid YAML"),
    ],
)
def test_a_bad_scorecard_names_the_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ScorecardError) as err:
        parse_scorecard(text, "x.yaml")
    assert str(err.value).startswith(expected), str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScorecardError, match=r"nope\.yaml"):
        load_scorecard(tmp_path / "nope.yaml")
