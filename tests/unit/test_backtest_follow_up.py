"""The outcome loop in the backtest: action and save rates from what people recorded, beside churn."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from services.backtest.follow_up import NO_OUTCOME, NOT_ACTED_ON, follow_up
from services.backtest.measures import build_report
from services.backtest.model import ReviewedAlert
from services.backtest.render import render_html, render_table, report_to_json
from tests.unit import test_backtest_measures as measures

D = date(2026, 3, 1)


def _alert(account: str, *, acted: bool = False, outcome: str | None = None) -> ReviewedAlert:
    return ReviewedAlert(account, "usage_drop", D, acted, outcome)


ALERTS = [
    _alert("saved-1", acted=True, outcome="saved"),
    _alert("saved-but-gone", acted=True, outcome="saved"),
    _alert("false-1", acted=True, outcome="false_alarm"),
    _alert("acked", acted=True),
    _alert("ignored-gone"),
    _alert("ignored"),
]
CHURN = {"saved-but-gone": D + timedelta(days=20), "ignored-gone": D + timedelta(days=30), "false-1": None}


def test_rates_and_rows_beside_churn() -> None:
    f = follow_up(ALERTS, CHURN, horizon_days=60)
    assert f is not None
    assert (f.alerts, f.acted, f.saves, f.saves_churned_anyway) == (6, 4, 2, 1)
    assert f.action_rate == 4 / 6 and f.save_rate == 2 / 6
    rows = {r.label: (r.alerts, r.churned) for r in f.rows}
    assert rows == {"false_alarm": (1, 0), "saved": (2, 1), NO_OUTCOME: (1, 0), NOT_ACTED_ON: (2, 1)}
    assert [r.label for r in f.rows][-2:] == [NO_OUTCOME, NOT_ACTED_ON]  # outcomes first, the rest last


def test_churn_after_the_horizon_is_not_counted() -> None:
    late = {"ignored-gone": D + timedelta(days=61)}
    f = follow_up([_alert("ignored-gone")], late, horizon_days=60)
    assert f is not None and f.rows[0].churned == 0


def test_no_alerts_no_section() -> None:
    assert follow_up([], {}, horizon_days=60) is None


def test_report_shows_the_section_in_every_format() -> None:
    report = build_report(measures.ACCOUNTS, measures.ALERTS, period=measures.PERIOD, params=measures.PARAMS)
    f = follow_up([*ALERTS, _alert("<b>x</b>", acted=True, outcome="<script>bad()</script>")], CHURN, 60)
    with_follow_up = replace(report, follow_up=f)
    table = render_table(with_follow_up)
    assert "What people did with the 7 alerts" in table and "saved 2" in table and "1 churned anyway" in table
    body = report_to_json(with_follow_up)
    assert body["follow_up"]["saves"] == 2 and body["follow_up"]["rows"][0]["label"] == "<script>bad()</script>"
    html = render_html(with_follow_up)
    assert "&lt;script&gt;bad()&lt;/script&gt;" in html and "<script>bad()" not in html
    assert "follow_up" not in render_table(report) and report_to_json(report)["follow_up"] is None
