"""The backtest's measures: per rule, how often and how early each warning was right. Pure; stdlib only.

Words (H = ``horizon_days``, 60 by default; the period runs from ``start`` to ``end``, both days included):

- An alert is *right* when its account churned within the H days after it: raised_on < churned_on <=
  raised_on + H. An alert on or after the churn day is wrong (a churned account should raise nothing).
  Alerts raised after end - H are *unjudged* (the account may still churn after the data ends): they are left
  out of precision and shown as a count.
- *Precision* = right alerts / judged alerts. The unit is the alert: each alert counts, repeats included.
- *Account-weeks*: for each account, the days first_day + warmup, + 7, + 14, ... that fall in the period, come
  before its churn day, and are at most its last_day and end - H. One is *followed by churn* when the account
  churned within the H days after it. *Base rate* = share of account-weeks followed by churn: what an alert
  raised at random would achieve. *Lift* = precision / base rate (1.0 = no better than chance; undefined when
  the base rate is 0).
- *Recall*: of the accounts that churned on a day c whose whole warning window was observed (c - lead_max >=
  start and >= first_day + warmup, c <= end), the share with at least one alert of the rule raised between
  lead_max and lead_min days before c (60 and 14 by default: early enough to act, not a different question).
- *Lead time*: for each of those churners, c minus its earliest alert of the rule in the H days before c;
  median and quartiles (linear interpolation between ranked values) over the churners that had one.
- *Volume*: alerts per account per month = alerts / (observed account-days / 30.44), an account being observed
  from max(first_day, start) to min(last_day, end), both included. Alerts per CSM per week = alerts on accounts
  that have a CSM / number of CSMs / weeks in the period (alerts on unowned accounts reach no CSM); also the
  busiest CSM's figure.
- *Any alert, per account-week*: an account-week is flagged when the account had any alert in the 7 days
  ending on that day; its precision, recall and lift are over account-weeks (a complement to the per-alert
  precision of the rule rows, not a replacement).
- *Scores* (the health score, lower = riskier, or a risk estimate, higher = riskier), on the same account-weeks:
  a week's value is the point on that day or the latest in the 7 days before, else the week is left out.
  ROC AUC = chance that a week followed by churn looks riskier than one that is not (ties count half). At a
  threshold a week is flagged when its health is below it (below 40 is the red band, below 70 yellow or worse)
  or its risk is at or above it; precision, recall, flagged share and lift are over the scored weeks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.backtest.model import (
    AccountHistory,
    AccountWeek,
    Alert,
    BacktestParams,
    BacktestReport,
    LeadBin,
    LeadTimes,
    Period,
    RuleKey,
    RuleMeasures,
    ScoreMeasures,
    ScorePoint,
    Verdict,
    VerdictCriteria,
    VerdictKind,
    WeekCount,
    WeekFlagMeasures,
)

DAYS_PER_MONTH = 30.44
WEEK = timedelta(days=7)
HEALTH_THRESHOLDS = (30.0, 40.0, 50.0, 60.0, 70.0)
RISK_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)
SEVERITY_ORDER = ("info", "warning", "critical")
DEFAULT_PARAMS = BacktestParams()


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _lift(precision: float | None, base_rate: float | None) -> float | None:
    return precision / base_rate if precision is not None and base_rate else None


def churn_follows(churned_on: date | None, day: date, horizon_days: int) -> bool:
    return churned_on is not None and day < churned_on <= day + timedelta(days=horizon_days)


def account_weeks(accounts: Iterable[AccountHistory], *, period: Period, params: BacktestParams) -> list[AccountWeek]:
    last_judgeable = period.end - timedelta(days=params.horizon_days)
    weeks = []
    for account in accounts:
        day = account.first_day + timedelta(days=params.warmup_days)
        if day < period.start:  # keep the account's own weekly grid, start at its first week in the period
            day += WEEK * -((day - period.start).days // 7)
        stop = min(account.last_day, last_judgeable)
        while day <= stop and (account.churned_on is None or day < account.churned_on):
            weeks.append(
                AccountWeek(account.account_id, day, churn_follows(account.churned_on, day, params.horizon_days))
            )
            day += WEEK
    return weeks


def quantile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between ranked values (numpy's default, Excel's QUARTILE.INC)."""
    if not sorted_values:
        return None
    position = p * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def lead_times(days: Iterable[int], horizon_days: int) -> LeadTimes:
    ranked = tuple(sorted(days))
    bins = tuple(
        LeadBin(lo, min(lo + 6, horizon_days), sum(lo <= d <= lo + 6 for d in ranked))
        for lo in range(0, horizon_days + 1, 7)
    )
    return LeadTimes(ranked, quantile(ranked, 0.5), quantile(ranked, 0.25), quantile(ranked, 0.75), bins)


def roc_auc(riskiness: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Mann-Whitney: the chance a positive outranks a negative, ties counting half; None without both."""
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return None
    order = sorted(range(len(riskiness)), key=lambda i: riskiness[i])
    ranks = [0.0] * len(order)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and riskiness[order[j + 1]] == riskiness[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # tied values share their average rank
        i = j + 1
    rank_sum = sum(rank for rank, pos in zip(ranks, positive, strict=True) if pos)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def week_flag_measures(flags: Iterable[tuple[bool, bool]], threshold: float | None = None) -> WeekFlagMeasures:
    """``flags``: (flagged, followed by churn) per account-week."""
    pairs = list(flags)
    positives = sum(pos for _, pos in pairs)
    flagged = sum(flag for flag, _ in pairs)
    hits = sum(flag and pos for flag, pos in pairs)
    precision = _ratio(hits, flagged)
    return WeekFlagMeasures(
        threshold=threshold,
        weeks=len(pairs),
        positives=positives,
        flagged=flagged,
        flagged_positive=hits,
        precision=precision,
        recall=_ratio(hits, positives),
        flagged_share=_ratio(flagged, len(pairs)),
        lift=_lift(precision, _ratio(positives, len(pairs))),
    )


def rule_verdict(
    *, judged: int, lift: float | None, alerts_per_account_month: float | None, criteria: VerdictCriteria
) -> Verdict:
    if judged < criteria.min_judged_alerts:
        return Verdict(VerdictKind.TOO_FEW_TO_JUDGE, (f"{judged} judged alerts, {criteria.min_judged_alerts} needed",))
    lift_ok = lift is not None and lift >= criteria.min_lift
    volume_ok = (
        alerts_per_account_month is not None and alerts_per_account_month <= criteria.max_alerts_per_account_month
    )
    reasons = (
        f"lift {'n/a' if lift is None else f'{lift:.2f}'} {'>=' if lift_ok else 'below'} {criteria.min_lift:g}",
        f"{alerts_per_account_month or 0:.2f} alerts per account-month"
        f" {'<=' if volume_ok else 'above'} {criteria.max_alerts_per_account_month:g}",
    )
    return Verdict(VerdictKind.EARNS_ITS_PLACE if lift_ok and volume_ok else VerdictKind.FALLS_SHORT, reasons)


@dataclass(frozen=True)
class _Population:
    """What every rule is measured against: the same accounts, churners, base rate and exposure."""

    period: Period
    params: BacktestParams
    accounts: Mapping[str, AccountHistory]
    observable_churners: tuple[AccountHistory, ...]
    base_rate: float | None
    observed_account_days: int
    csm_of: Mapping[str, str]  # account -> CSM, owned accounts only
    csms: int


def _population(
    accounts: Sequence[AccountHistory], weeks: Sequence[AccountWeek], period: Period, params: BacktestParams
) -> _Population:
    def observable(a: AccountHistory) -> bool:
        c = a.churned_on
        window_opens = max(period.start, a.first_day + timedelta(days=params.warmup_days))
        return c is not None and c <= period.end and c - timedelta(days=params.lead_max_days) >= window_opens

    exposure = sum(max(0, (min(a.last_day, period.end) - max(a.first_day, period.start)).days + 1) for a in accounts)
    csm_of = {a.account_id: a.csm for a in accounts if a.csm}
    return _Population(
        period=period,
        params=params,
        accounts={a.account_id: a for a in accounts},
        observable_churners=tuple(a for a in accounts if observable(a)),
        base_rate=_ratio(sum(w.churn_follows for w in weeks), len(weeks)),
        observed_account_days=exposure,
        csm_of=csm_of,
        csms=len(set(csm_of.values())),
    )


def _warnings(alerts: Sequence[Alert], pop: _Population) -> tuple[int, LeadTimes]:
    """Churners warned inside the lead window, and each churner's earliest lead within H."""
    p = pop.params
    raised: dict[str, list[date]] = defaultdict(list)
    for alert in alerts:
        raised[alert.account_id].append(alert.raised_on)
    warned, earliest = 0, []
    for churner in pop.observable_churners:
        assert churner.churned_on is not None
        leads = [(churner.churned_on - day).days for day in raised.get(churner.account_id, ())]
        warned += any(p.lead_min_days <= lead <= p.lead_max_days for lead in leads)
        in_horizon = [lead for lead in leads if 0 < lead <= p.horizon_days]
        if in_horizon:
            earliest.append(max(in_horizon))
    return warned, lead_times(earliest, p.horizon_days)


def _volume(alerts: Sequence[Alert], pop: _Population) -> tuple[float | None, float | None, float | None]:
    weeks = pop.period.days / 7
    per_csm: dict[str, int] = defaultdict(int)
    for alert in alerts:
        if alert.account_id in pop.csm_of:
            per_csm[pop.csm_of[alert.account_id]] += 1
    per_account_month = _ratio(len(alerts), pop.observed_account_days / DAYS_PER_MONTH)
    per_csm_week = _ratio(sum(per_csm.values()), pop.csms * weeks)
    busiest = max(per_csm.values(), default=0) / weeks if pop.csms else None
    return per_account_month, per_csm_week, busiest


def _alerts_per_week(alerts: Sequence[Alert], period: Period) -> tuple[WeekCount, ...]:
    counts = [0] * -(-period.days // 7)
    for alert in alerts:
        if period.start <= alert.raised_on <= period.end:
            counts[(alert.raised_on - period.start).days // 7] += 1
    return tuple(WeekCount(period.start + WEEK * i, n) for i, n in enumerate(counts))


def _rule_measures(rule: RuleKey, alerts: Sequence[Alert], pop: _Population) -> RuleMeasures:
    p = pop.params
    last_judgeable = pop.period.end - timedelta(days=p.horizon_days)
    judged = [a for a in alerts if a.raised_on <= last_judgeable]
    right = sum(churn_follows(pop.accounts[a.account_id].churned_on, a.raised_on, p.horizon_days) for a in judged)
    precision = _ratio(right, len(judged))
    lift = _lift(precision, pop.base_rate)
    warned, lead = _warnings(alerts, pop)
    per_account_month, per_csm_week, busiest = _volume(alerts, pop)
    return RuleMeasures(
        rule=rule,
        alerts=len(alerts),
        accounts_alerted=len({a.account_id for a in alerts}),
        judged=len(judged),
        right=right,
        unjudged=len(alerts) - len(judged),
        precision=precision,
        lift=lift,
        churners_observable=len(pop.observable_churners),
        churners_warned=warned,
        recall=_ratio(warned, len(pop.observable_churners)),
        lead=lead,
        alerts_per_account_month=per_account_month,
        alerts_per_csm_week=per_csm_week,
        max_alerts_per_csm_week=busiest,
        alerts_per_week=_alerts_per_week(alerts, pop.period),
        verdict=rule_verdict(
            judged=len(judged), lift=lift, alerts_per_account_month=per_account_month, criteria=p.verdict
        ),
    )


def _rule_keys(alerts: Iterable[Alert], groups: Mapping[str, frozenset[tuple[str, str]]]) -> list[RuleKey]:
    def severity_rank(s: str) -> tuple[int, str]:
        return (SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else len(SEVERITY_ORDER), s)

    kinds: dict[str, set[str]] = defaultdict(set)
    for alert in alerts:
        kinds[alert.signal_type].add(alert.severity)
    keys = [RuleKey(), *(RuleKey(name=name, only=only) for name, only in groups.items())]
    for signal_type in sorted(kinds):
        keys.append(RuleKey(signal_type))
        keys.extend(RuleKey(signal_type, s) for s in sorted(kinds[signal_type], key=severity_rank))
    return keys


def _any_alert_weeks(weeks: Sequence[AccountWeek], alerts: Sequence[Alert]) -> WeekFlagMeasures:
    raised = {(a.account_id, a.raised_on) for a in alerts}
    return week_flag_measures(
        (any((w.account_id, w.day - timedelta(days=back)) in raised for back in range(7)), w.churn_follows)
        for w in weeks
    )


def _value_on(series: tuple[list[date], list[float]] | None, day: date) -> float | None:
    """The point on ``day``, else the latest in the 7 days before it."""
    if series is None:
        return None
    days, values = series
    i = bisect_right(days, day)
    return values[i - 1] if i and days[i - 1] >= day - WEEK else None


def score_measures(
    points: Iterable[ScorePoint],
    accounts: Sequence[AccountHistory],
    higher_is_riskier: bool,
    thresholds: Sequence[float] | None = None,
    *,
    period: Period,
    params: BacktestParams = DEFAULT_PARAMS,
    name: str = "score",
) -> ScoreMeasures:
    if thresholds is None:
        thresholds = RISK_THRESHOLDS if higher_is_riskier else HEALTH_THRESHOLDS
    by_account: dict[str, list[ScorePoint]] = defaultdict(list)
    for point in points:
        by_account[point.account_id].append(point)
    series = {}
    for account_id, own in by_account.items():
        own.sort(key=lambda pt: pt.day)  # stable: the last given point of a day wins
        series[account_id] = ([pt.day for pt in own], [pt.value for pt in own])
    weeks = account_weeks(accounts, period=period, params=params)
    values = ((_value_on(series.get(w.account_id), w.day), w.churn_follows) for w in weeks)
    scored = [(v, pos) for v, pos in values if v is not None]
    sign = 1.0 if higher_is_riskier else -1.0
    auc = roc_auc([sign * v for v, _ in scored], [pos for _, pos in scored])

    def flagged(value: float, threshold: float) -> bool:
        return value >= threshold if higher_is_riskier else value < threshold

    rows = tuple(week_flag_measures(((flagged(v, t), pos) for v, pos in scored), t) for t in thresholds)
    base_rate = _ratio(sum(pos for _, pos in scored), len(scored))
    return ScoreMeasures(name, higher_is_riskier, len(scored), len(weeks) - len(scored), base_rate, auc, rows)


def build_report(
    accounts: Sequence[AccountHistory],
    alerts: Sequence[Alert],
    scores: Mapping[str, tuple[Sequence[ScorePoint], bool]] | None = None,
    *,
    period: Period,
    params: BacktestParams = DEFAULT_PARAMS,
    groups: Mapping[str, frozenset[tuple[str, str]]] | None = None,
) -> BacktestReport:
    """``scores``: name -> (daily points, higher_is_riskier); ``groups``: extra rows, name -> the (signal type,
    severity) pairs they take (e.g. the alerts routed to people). Alerts on accounts not in ``accounts`` are counted
    apart and measured nowhere (no outcome is known for them)."""
    weeks = account_weeks(accounts, period=period, params=params)
    pop = _population(accounts, weeks, period, params)
    known = [a for a in alerts if a.account_id in pop.accounts]
    keys = _rule_keys(known, groups or {})
    rules = tuple(_rule_measures(key, [a for a in known if key.matches(a)], pop) for key in keys)
    score_rows = tuple(
        score_measures(pts, accounts, riskier, period=period, params=params, name=name)
        for name, (pts, riskier) in (scores or {}).items()
    )
    return BacktestReport(
        period=period,
        params=params,
        accounts=len(accounts),
        churners=sum(a.churned_on is not None and period.start <= a.churned_on <= period.end for a in accounts),
        churners_observable=len(pop.observable_churners),
        account_weeks=len(weeks),
        positive_weeks=sum(w.churn_follows for w in weeks),
        base_rate=pop.base_rate,
        alerts=len(known),
        alerts_unknown_account=len(alerts) - len(known),
        observed_account_days=pop.observed_account_days,
        csms=pop.csms,
        rules=rules,
        any_alert_weeks=_any_alert_weeks(weeks, known),
        scores=score_rows,
    )
