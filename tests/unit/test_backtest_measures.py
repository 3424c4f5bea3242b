"""The backtest's yardstick on hand-made histories; every expected number is worked out in the comments.

Days are written D<n>: n days after the period starts. The period is D0..D179 (180 days), H = 60 (so alerts
after D119 are unjudged and account-weeks stop at D119), warm-up 28 days, lead window 14..60 days.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.backtest.measures import (
    HEALTH_THRESHOLDS,
    account_weeks,
    build_report,
    churn_follows,
    lead_times,
    quantile,
    roc_auc,
    rule_verdict,
    score_measures,
)
from services.backtest.model import (
    AccountHistory,
    Alert,
    BacktestParams,
    BacktestReport,
    LeadBin,
    Period,
    RuleMeasures,
    ScorePoint,
    VerdictCriteria,
    VerdictKind,
    WeekCount,
)

START = date(2025, 1, 6)
PERIOD = Period(START, START + timedelta(days=179))
PARAMS = BacktestParams(verdict=VerdictCriteria(min_lift=2.0, max_alerts_per_account_month=0.5, min_judged_alerts=3))


def D(n: int) -> date:
    return START + timedelta(days=n)


# Account-weeks are days first_day + 28 + 7k, before the churn day and at most min(last_day, D119); positive when
# the churn day is in (day, day + 60]:
#   A churns D100: weeks D28..D98 = 11, positive from D40 on = D42..D98 = 9
#   B churns D150: weeks D28..D119 = 14, positive from D90 = D91, D98, D105, D112, D119 = 5
#   C, D never churn: 14 weeks each, none positive
#   E starts D70, churns D170: weeks D98, D105, D112, D119 = 4, positive from D110 = D112, D119 = 2
#   F churns D45: weeks D28, D35, D42 = 3, all positive
# 60 account-weeks, 19 positive: base rate 19/60.
ACCOUNTS = [
    AccountHistory("A", D(0), D(100), D(100), csm="ann"),
    AccountHistory("B", D(0), D(150), D(150), csm="ann"),
    AccountHistory("C", D(0), D(179), None, csm="bob"),
    AccountHistory("D", D(0), D(179), None, csm="bob"),
    AccountHistory("E", D(70), D(170), D(170), csm=None),
    AccountHistory("F", D(0), D(45), D(45), csm="bob"),
]
BASE_RATE = 19 / 60
ALERTS = [
    Alert("A", "usage_drop", "warning", D(50)),  # right: A churns 50 days later
    Alert("A", "usage_drop", "critical", D(90)),  # right, 10 days before
    Alert("A", "ticket_spike", "warning", D(30)),  # wrong: churn 70 days later, past H
    Alert("B", "usage_drop", "warning", D(95)),  # right, 55 days before
    Alert("B", "score_drop", "critical", D(125)),  # unjudged: after D119
    Alert("C", "usage_drop", "warning", D(60)),  # wrong: C never churns
    Alert("C", "ticket_spike", "warning", D(80)),  # wrong
    Alert("D", "usage_drop", "warning", D(130)),  # unjudged
    Alert("A", "ticket_spike", "warning", D(105)),  # wrong: after A's churn day
    Alert("Z", "usage_drop", "warning", D(40)),  # no such account: counted apart, measured nowhere
]
# Observed account-days, both ends included: A 101, B 151, C 180, D 180, E D70..D170 = 101, F 46 -> 759.
ACCOUNT_MONTHS = 759 / 30.44
WEEKS_IN_PERIOD = 180 / 7


def _row(report: BacktestReport, label: str) -> RuleMeasures:
    return next(r for r in report.rules if r.rule.label == label)


def _health_points() -> list[ScorePoint]:
    """A constant health per account, every observed day: A 20, B 50, C 80, D 80, E 45, F 30."""
    level = {"A": 20.0, "B": 50.0, "C": 80.0, "D": 80.0, "E": 45.0, "F": 30.0}
    return [
        ScorePoint(a.account_id, a.first_day + timedelta(days=i), level[a.account_id])
        for a in ACCOUNTS
        for i in range((a.last_day - a.first_day).days + 1)
    ]


@pytest.fixture(scope="module")
def report() -> BacktestReport:
    health = _health_points()
    risk = [ScorePoint(p.account_id, p.day, (100 - p.value) / 100) for p in health]
    return build_report(
        ACCOUNTS, ALERTS, {"health": (health, False), "risk": (risk, True)}, period=PERIOD, params=PARAMS
    )


def test_headline_counts_and_base_rate(report: BacktestReport) -> None:
    assert (report.accounts, report.churners, report.account_weeks, report.positive_weeks) == (6, 4, 60, 19)
    assert report.base_rate == pytest.approx(BASE_RATE)
    # Recall counts churners whose whole window (churn - 60 days) was observed after warm-up: A (D40 >= D28),
    # B (D90), E (D110 >= D98); not F (D-15 is before the period).
    assert report.churners_observable == 3
    assert (report.alerts, report.alerts_unknown_account, report.observed_account_days, report.csms) == (9, 1, 759, 2)


def test_rows_are_overall_then_each_type_then_its_severities(report: BacktestReport) -> None:
    assert [r.rule.label for r in report.rules] == [
        "all risk alerts",
        "score_drop",
        "score_drop / critical",
        "ticket_spike",
        "ticket_spike / warning",
        "usage_drop",
        "usage_drop / warning",
        "usage_drop / critical",
    ]


def test_overall_row(report: BacktestReport) -> None:
    row = _row(report, "all risk alerts")
    # 9 alerts on A, B, C, D; judged = raised by D119 = all but the D125 and D130 ones = 7; right: D50, D90, D95.
    assert (row.alerts, row.accounts_alerted, row.judged, row.right, row.unjudged) == (9, 4, 7, 3, 2)
    assert row.precision == pytest.approx(3 / 7)
    assert row.lift == pytest.approx((3 / 7) / BASE_RATE)  # 180/133 = 1.353
    # Warned 14..60 days before: A by D50 (window D40..D86), B by D95 and D125 (window D90..D136); E never.
    assert (row.churners_observable, row.churners_warned) == (3, 2)
    assert row.recall == pytest.approx(2 / 3)
    # Earliest alert within 60 days before the churn: A D50 (50 days; D30 is 70 days, D105 after), B D95 (55).
    # Quartiles by linear interpolation on [50, 55]: q1 = 50 + 0.25 * 5, median 52.5, q3 = 50 + 0.75 * 5.
    assert row.lead.days == (50, 55)
    assert (row.lead.q1, row.lead.median, row.lead.q3) == pytest.approx((51.25, 52.5, 53.75))
    assert [b for b in row.lead.histogram if b.churners] == [LeadBin(49, 55, 2)]
    assert row.lead.histogram[-1] == LeadBin(56, 60, 0)
    assert row.alerts_per_account_month == pytest.approx(9 / ACCOUNT_MONTHS)  # 9 * 30.44 / 759 = 0.361
    # ann owns A and B (6 alerts), bob owns C, D, F (3): 9 alerts / 2 CSMs / (180 / 7) weeks = 0.175.
    assert row.alerts_per_csm_week == pytest.approx(0.175)
    assert row.max_alerts_per_csm_week == pytest.approx(6 / WEEKS_IN_PERIOD)
    assert row.verdict.kind is VerdictKind.FALLS_SHORT  # lift 1.35 < 2


def test_alerts_per_week_series(report: BacktestReport) -> None:
    series = _row(report, "all risk alerts").alerts_per_week
    assert len(series) == 26 and series[0] == WeekCount(START, 0) and series[13].week_start == D(91)
    # Week index = day // 7: D30 -> 4, D50 -> 7, D60 -> 8, D80 -> 11, D90 -> 12, D95 -> 13, D105 -> 15, ...
    assert {i: w.alerts for i, w in enumerate(series) if w.alerts} == {
        4: 1,
        7: 1,
        8: 1,
        11: 1,
        12: 1,
        13: 1,
        15: 1,
        17: 1,
        18: 1,
    }


@pytest.mark.parametrize(
    ("label", "judged", "right", "precision", "recall", "lead_days", "verdict"),
    [
        # D50, D90, D95 right, C's D60 wrong, D's D130 unjudged; A warned at 50 days, B at 55.
        ("usage_drop", 4, 3, 3 / 4, 2 / 3, (50, 55), VerdictKind.EARNS_ITS_PLACE),
        ("usage_drop / warning", 3, 2, 2 / 3, 2 / 3, (50, 55), VerdictKind.EARNS_ITS_PLACE),
        # only A's D90, 10 days before: right, but too late to count for recall
        ("usage_drop / critical", 1, 1, 1.0, 0.0, (10,), VerdictKind.TOO_FEW_TO_JUDGE),
        # D30 (70 days before), D80 on C, D105 (after churn): all wrong; none within 60 days before a churn
        ("ticket_spike", 3, 0, 0.0, 0.0, (), VerdictKind.FALLS_SHORT),
        # B's D125 is unjudged but warned B 25 days before its churn
        ("score_drop", 0, 0, None, 1 / 3, (25,), VerdictKind.TOO_FEW_TO_JUDGE),
    ],
)
def test_rule_rows(
    report: BacktestReport,
    label: str,
    judged: int,
    right: int,
    precision: float | None,
    recall: float,
    lead_days: tuple[int, ...],
    verdict: VerdictKind,
) -> None:
    row = _row(report, label)
    assert (row.judged, row.right) == (judged, right)
    assert row.precision == (None if precision is None else pytest.approx(precision))
    assert row.lift == (None if precision is None else pytest.approx(precision / BASE_RATE))
    assert row.recall == pytest.approx(recall)
    assert row.lead.days == lead_days
    assert row.lead.median == (pytest.approx(sum(lead_days) / len(lead_days)) if lead_days else None)
    assert row.alerts_per_account_month == pytest.approx(row.alerts / ACCOUNT_MONTHS)
    assert row.verdict.kind is verdict


def test_usage_drop_lift_by_hand(report: BacktestReport) -> None:
    assert _row(report, "usage_drop").lift == pytest.approx(45 / 19)  # 0.75 / (19/60)


def test_any_alert_per_account_week(report: BacktestReport) -> None:
    # Flagged: an alert in the 7 days ending on the week's day. A: D30 -> D35 (not followed by churn: 35 + 60 < 100),
    # D50 -> D56 and D90 -> D91 (both followed); B: D95 -> D98 (followed); C: D60 -> D63, D80 -> D84 (not).
    m = report.any_alert_weeks
    assert (m.weeks, m.positives, m.flagged, m.flagged_positive) == (60, 19, 6, 3)
    assert (m.precision, m.recall, m.flagged_share) == pytest.approx((0.5, 3 / 19, 0.1))
    assert m.lift == pytest.approx(30 / 19)


def test_health_score_auc_and_thresholds(report: BacktestReport) -> None:
    health = report.scores[0]
    assert (health.name, health.weeks_scored, health.weeks_unscored) == ("health", 60, 0)
    # Positives: A 9 at 20, F 3 at 30, E 2 at 45, B 5 at 50. Negatives: A 2 at 20, E 2 at 45, B 9 at 50, C+D 28 at 80.
    # Per positive, negatives healthier count 1, equal 0.5: A 39 + 2*0.5 = 40, F 39, E 37 + 1 = 38, B 28 + 4.5.
    # (9*40 + 3*39 + 2*38 + 5*32.5) / (19*41) = 715.5 / 779.
    assert health.auc == pytest.approx(715.5 / 779)
    by_threshold = {t.threshold: t for t in health.thresholds}
    assert tuple(by_threshold) == HEALTH_THRESHOLDS
    red = by_threshold[40.0]  # below 40: A's 11 weeks (9 positive) and F's 3 (all positive)
    assert (red.flagged, red.flagged_positive) == (14, 12)
    assert (red.precision, red.recall, red.flagged_share) == pytest.approx((12 / 14, 12 / 19, 14 / 60))
    assert red.lift == pytest.approx((12 / 14) / BASE_RATE)
    yellow = by_threshold[70.0]  # below 70: A, B, E, F = 32 weeks, all 19 positives
    assert (yellow.flagged, yellow.recall) == (32, 1.0)
    assert yellow.lift == pytest.approx(1.875)  # (19/32) / (19/60)


def test_risk_estimate_flags_at_or_above_threshold(report: BacktestReport) -> None:
    risk = report.scores[1]
    assert risk.auc == pytest.approx(715.5 / 779)  # the same ranking, upside down
    half = next(t for t in risk.thresholds if t.threshold == 0.5)
    assert (half.flagged, half.flagged_positive) == (32, 19)  # B's risk is exactly 0.5: flagged


def test_week_value_is_that_day_or_the_latest_within_seven_days_before() -> None:
    account = AccountHistory("X", D(0), D(179))  # weeks D28, D35, ..., D119: 14
    points = [ScorePoint("X", D(21), 10.0), ScorePoint("X", D(36), 90.0)]
    # D21 serves D28 (7 days before); D35 has nothing in D28..D35; D36 serves D42 but not D49 (13 days).
    m = score_measures(points, [account], False, period=PERIOD, params=PARAMS)
    assert (m.weeks_scored, m.weeks_unscored, m.auc, m.base_rate) == (2, 12, None, 0.0)


@pytest.mark.parametrize(
    ("raised", "churned", "right"),
    [(40, 100, True), (39, 100, False), (99, 100, True), (100, 100, False), (101, 100, False), (50, None, False)],
)
def test_an_alert_is_right_when_churn_follows_within_h(raised: int, churned: int | None, right: bool) -> None:
    assert churn_follows(None if churned is None else D(churned), D(raised), 60) is right


def test_weeks_keep_the_accounts_grid_when_it_starts_before_the_period() -> None:
    early = AccountHistory("X", D(-40), D(179))  # grid D-12, D-5, D2, D9, ...
    days = [w.day for w in account_weeks([early], period=PERIOD, params=PARAMS)]
    assert days[:2] == [D(2), D(9)] and days[-1] == D(114)


def test_no_alerts() -> None:
    r = build_report(ACCOUNTS, [], period=PERIOD, params=PARAMS)
    (row,) = r.rules
    assert (row.alerts, row.judged, row.precision, row.lift) == (0, 0, None, None)
    assert (row.recall, row.lead.median, row.alerts_per_account_month) == (0.0, None, 0.0)
    assert row.verdict.kind is VerdictKind.TOO_FEW_TO_JUDGE
    assert r.any_alert_weeks.flagged == 0 and r.any_alert_weeks.precision is None


def test_no_churners_means_zero_base_rate_and_no_lift() -> None:
    loyal = [AccountHistory(a.account_id, a.first_day, D(179), None, a.csm) for a in ACCOUNTS]
    r = build_report(loyal, ALERTS, period=PERIOD, params=PARAMS)
    row = r.rules[0]
    assert (r.base_rate, r.churners, row.precision, row.lift, row.recall) == (0.0, 0, 0.0, None, None)
    assert row.verdict.kind is VerdictKind.FALLS_SHORT


def test_period_too_short_for_any_account_week() -> None:
    short = Period(START, D(80))  # end - H = D20 comes before any account's first week (D28)
    r = build_report(ACCOUNTS, ALERTS, {"health": (_health_points(), False)}, period=short, params=PARAMS)
    assert (r.account_weeks, r.base_rate, r.churners_observable) == (0, None, 0)
    assert all(row.judged == 0 and row.precision is None and row.lift is None for row in r.rules)
    assert r.scores[0].auc is None and r.scores[0].base_rate is None


def test_no_accounts_at_all() -> None:
    r = build_report([], ALERTS, period=PERIOD)
    assert (r.accounts, r.alerts, r.alerts_unknown_account, r.csms) == (0, 0, 10, 0)
    assert r.rules[0].alerts_per_account_month is None and r.rules[0].alerts_per_csm_week is None


def test_unknown_severities_sort_after_known_ones() -> None:
    alerts = [Alert("C", "x", s, D(60)) for s in ("zzz", "critical", "info")]
    labels = [row.rule.label for row in build_report(ACCOUNTS, alerts, period=PERIOD).rules]
    assert labels == ["all risk alerts", "x", "x / info", "x / critical", "x / zzz"]


def test_quantiles_and_auc_edges() -> None:
    assert quantile([], 0.5) is None and quantile([7.0], 0.25) == 7.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.25) == pytest.approx(1.75)
    assert lead_times([], 60).median is None
    assert roc_auc([1.0, 1.0, 1.0], [True, False, False]) == 0.5
    assert roc_auc([3.0, 2.0, 1.0], [True, False, False]) == 1.0
    assert roc_auc([1.0, 2.0], [False, False]) is None


@pytest.mark.parametrize(
    ("judged", "lift", "per_month", "kind"),
    [
        (19, 5.0, 0.1, VerdictKind.TOO_FEW_TO_JUDGE),
        (20, 2.0, 0.5, VerdictKind.EARNS_ITS_PLACE),
        (20, 1.99, 0.1, VerdictKind.FALLS_SHORT),
        (20, 3.0, 0.51, VerdictKind.FALLS_SHORT),
        (20, None, 0.1, VerdictKind.FALLS_SHORT),
    ],
)
def test_rule_verdict(judged: int, lift: float | None, per_month: float, kind: VerdictKind) -> None:
    verdict = rule_verdict(judged=judged, lift=lift, alerts_per_account_month=per_month, criteria=VerdictCriteria())
    assert verdict.kind is kind and verdict.reasons
