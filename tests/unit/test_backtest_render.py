"""The backtest report's three renderings: terminal table, JSON, self-contained HTML."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from services.backtest.measures import build_report
from services.backtest.model import AccountHistory, Alert, BacktestReport, Period, ScorePoint
from services.backtest.render import REPORT_JSON_VERSION, render_html, render_table, report_to_json
from tests.unit.test_backtest_measures import ACCOUNTS, ALERTS, PARAMS, PERIOD, D, _health_points

HOSTILE = '<script>alert("x")</script>$\\frac{$'  # markup, and a dollar that would be mathtext in matplotlib


@pytest.fixture(scope="module")
def report() -> BacktestReport:
    alerts = [*ALERTS, Alert("C", HOSTILE, "[bold]warning[/bold]", D(70))]
    return build_report(ACCOUNTS, alerts, {"health score": (_health_points(), False)}, period=PERIOD, params=PARAMS)


@pytest.fixture(scope="module")
def empty() -> BacktestReport:
    """No alerts, no churners, and a period too short for any account-week."""
    short = Period(PERIOD.start, PERIOD.start + timedelta(days=30))
    return build_report([AccountHistory("Q", short.start, short.end)], [], period=short)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href") or k.endswith(":href")]


def _parsed(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def test_table_names_every_rule_and_fits_120_columns(report: BacktestReport) -> None:
    text = render_table(report)
    for row in report.rules:
        if HOSTILE not in row.rule.label:
            assert row.rule.label in text
    # printed as written, not read as rich markup (folded inside its cell, as a long name would be)
    assert '<script>alert("x")</script>$' in text and "[bold]warning[/bold]" in text
    assert "31.7%" in text and "falls short" in text and "earns its place" in text
    assert "ROC AUC 0.918" in text
    assert max(len(line) for line in text.splitlines()) <= 120


def test_json_is_versioned_stable_and_round_trips(report: BacktestReport) -> None:
    body = report_to_json(report)
    assert json.loads(json.dumps(body)) == body
    assert body["version"] == REPORT_JSON_VERSION
    assert body["period"] == {"start": "2025-01-06", "end": "2025-07-04", "days": 180}
    assert body["base_rate"] == 0.3167  # 19/60, rounded to 4 places
    overall = body["rules"][0]
    assert overall["rule"] == {
        "signal_type": None,
        "severity": None,
        "name": None,
        "only": None,
        "label": "all risk alerts",
    }
    assert overall["verdict"]["kind"] == "falls short"
    assert overall["alerts_per_week"][4] == {"week_start": "2025-02-03", "alerts": 1}
    assert body["scores"][0]["thresholds"][1]["threshold"] == 40.0
    score_drop = next(r for r in body["rules"] if r["rule"]["label"] == "score_drop")
    assert score_drop["precision"] is None and score_drop["lift"] is None


def test_json_of_an_empty_report(empty: BacktestReport) -> None:
    body = report_to_json(empty)
    assert json.loads(json.dumps(body)) == body
    assert body["base_rate"] is None and body["rules"][0]["recall"] is None


def test_html_stands_alone_with_plots_and_escapes_names(report: BacktestReport) -> None:
    html = render_html(report, title="Backtest <of> & for")
    parsed = _parsed(html)
    assert parsed.tags.count("svg") == 4  # precision/recall, lead times, alerts per week, health thresholds
    assert "script" not in parsed.tags and "<script" not in html
    assert "&lt;script&gt;" in html  # the hostile rule name, shown as text
    assert "Backtest &lt;of&gt; &amp; for" in html
    assert all(link.startswith("#") for link in parsed.links), [x for x in parsed.links if not x.startswith("#")]
    assert "Base rate" in html and "Lift" in html and "earns its place" in html


def test_html_and_table_of_an_empty_report(empty: BacktestReport) -> None:
    html = render_html(empty)
    assert "No risk alerts in the period." in html
    assert _parsed(html).tags.count("svg") == 0  # no thresholds without scores, nothing to plot
    assert "all risk alerts" in render_table(empty)


def test_html_plots_a_score_even_without_alerts() -> None:
    account = AccountHistory("Q", PERIOD.start, PERIOD.end)
    points = [ScorePoint("Q", PERIOD.start + timedelta(days=i), 50.0) for i in range(PERIOD.days)]
    r = build_report([account], [], {"health score": (points, False)}, period=PERIOD, params=PARAMS)
    assert _parsed(render_html(r)).tags.count("svg") == 1
