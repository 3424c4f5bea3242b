"""The test Prometheus' pure parts: metric names out of PromQL and out of a /metrics exposition (the dashboard
drift check), and the test copy of the rules with short ``for:`` durations."""

from __future__ import annotations

import pytest

from tests.support.prometheus import alert_rules, declared_metric_names, load_rules, metric_names, rules_with_short_for


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (le, route) (rate(a_bucket{x="y(z)", route=~"b|c"}[5m])) / on (job) b_total offset 5m > 0.5',
            {"a_bucket", "b_total"},
        ),
        ("histogram_quantile(0.95, sum by (le) (rate(c_bucket[$__rate_interval])))", {"c_bucket"}),
        (
            'up{job=~"churnwatch-.*"} == 0 and on () vector(1) or http2_requests_total * 1e3',
            {"up", "http2_requests_total"},
        ),
        ("sum without (instance) (increase(d_total[1h])) unless e", {"d_total", "e"}),
    ],
)
def test_metric_names_of_a_query(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_declared_names_of_an_exposition() -> None:
    text = "# HELP h x\n# TYPE h histogram\n# TYPE c_total counter\nc_total 1.0\n# TYPE g gauge\n# TYPE s summary\n"
    assert declared_metric_names(text) == {"h_bucket", "h_count", "h_sum", "c_total", "g", "s", "s_count", "s_sum"}


def test_the_test_copy_of_the_rules_changes_only_their_for_durations() -> None:
    real = load_rules()
    short = rules_with_short_for(real, "2s")
    assert [r.get("for") for r in alert_rules(short)] == ["2s" if "for" in r else None for r in alert_rules(real)]
    strip = [{k: v for k, v in r.items() if k != "for"} for r in alert_rules(real)]
    assert [{k: v for k, v in r.items() if k != "for"} for r in alert_rules(short)] == strip
    assert any("for" in r for r in alert_rules(real)) and load_rules() == real  # the real rules are untouched
