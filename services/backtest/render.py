"""The backtest report three ways: a terminal table (rich), a JSON document, one self-contained HTML file.

Nothing here computes a measure; it only formats a ``BacktestReport``. Every string that came from data (rule
names, score names) is escaped: rich gets ``Text`` objects, Jinja2 autoescapes, matplotlib escapes SVG text and
``$`` is escaped so a name is never read as mathtext. Plots are drawn with matplotlib's Agg canvas and embedded
as inline SVG, so the HTML file needs no network and no JavaScript.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from enum import Enum
from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.backtest.model import (
    BacktestParams,
    BacktestReport,
    FollowUp,
    LeadTimes,
    RuleMeasures,
    ScoreMeasures,
)
from shared.svg_plots import figure_svg, new_figure

REPORT_JSON_VERSION = 1
TABLE_WIDTH = 120
_DASH = "\N{EN DASH}"


def plain_definitions(params: BacktestParams) -> list[tuple[str, str]]:
    """The measures in the words of a head of customer success."""
    h, lo, hi, warm = params.horizon_days, params.lead_min_days, params.lead_max_days, params.warmup_days
    return [
        (
            "Right alert",
            f"the account churned within {h} days after the alert. An alert on or after the churn day is "
            f"wrong. Alerts from the last {h} days of the data cannot be judged yet and are only counted.",
        ),
        ("Precision", "the share of judged alerts that were right."),
        (
            "Base rate",
            f"the share of account-weeks (each account, once a week, after its first {warm} days) that "
            f"were followed by churn within {h} days: how often an alert raised at random would be right.",
        ),
        ("Lift", "precision divided by the base rate: 1.0 means no better than chance, 3.0 three times better."),
        (
            "Recall",
            f"of the accounts that churned (and that we watched long enough), the share warned between "
            f"{hi} and {lo} days before: early enough to act.",
        ),
        (
            "Lead time",
            f"for each warned churner, days from its first alert (within {h} days) to the churn; "
            "median and middle half (quartiles).",
        ),
        (
            "Volume",
            "alerts per account per month, and per CSM per week (the busiest CSM too): what it costs in attention.",
        ),
        (
            "Score",
            "ROC AUC: the chance a week followed by churn looks riskier than one that is not (0.5 = chance). "
            "At a threshold: how many weeks it flags, and their precision, recall and lift.",
        ),
    ]


def _pct(x: float | None) -> str:
    return _DASH if x is None else f"{x * 100:.1f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return _DASH if x is None else f"{x:.{digits}f}"


def _days(x: float | None) -> str:
    return _DASH if x is None else f"{x:.1f}".removesuffix(".0")


def _lead(lead: LeadTimes) -> str:
    return _DASH if lead.median is None else f"{_days(lead.median)} ({_days(lead.q1)}{_DASH}{_days(lead.q3)})"


def _criteria(params: BacktestParams) -> str:
    c = params.verdict
    return (
        f"A rule earns its place with lift >= {c.min_lift:g} and at most {c.max_alerts_per_account_month:g} alerts "
        f"per account-month, judged on at least {c.min_judged_alerts} alerts."
    )


def _headline(report: BacktestReport) -> str:
    p, r = report.period, report
    return (
        f"{p.start.isoformat()} to {p.end.isoformat()} ({p.days} days): {r.accounts} accounts, {r.churners} churned; "
        f"base rate {_pct(r.base_rate)} of {r.account_weeks} account-weeks churned within {r.params.horizon_days} days"
    )


def _rule_cells(row: RuleMeasures) -> dict[str, str]:
    return {
        "rule": row.rule.label,
        "level": "overall" if row.rule.signal_type is None else "type" if row.rule.severity is None else "severity",
        "alerts": str(row.alerts),
        "accounts": str(row.accounts_alerted),
        "judged": str(row.judged),
        "unjudged": str(row.unjudged),
        "right": str(row.right),
        "precision": _pct(row.precision),
        "lift": _num(row.lift),
        "recall": f"{_pct(row.recall)} of {row.churners_observable}",
        "lead": _lead(row.lead),
        "per_account_month": _num(row.alerts_per_account_month),
        "per_csm_week": _num(row.alerts_per_csm_week),
        "busiest_csm_week": _num(row.max_alerts_per_csm_week),
        "verdict": row.verdict.kind.value,
        "reasons": "; ".join(row.verdict.reasons),
    }


def _threshold_cells(score: ScoreMeasures) -> list[dict[str, str]]:
    sign = ">=" if score.higher_is_riskier else "<"
    return [
        {
            "when": f"{sign} {t.threshold:g}",
            "flagged": _pct(t.flagged_share),
            "precision": _pct(t.precision),
            "recall": _pct(t.recall),
            "lift": _num(t.lift),
        }
        for t in score.thresholds
    ]


def _score_title(score: ScoreMeasures) -> str:
    return (
        f"{score.name}: ROC AUC {_num(score.auc, 3)} on {score.weeks_scored} account-weeks "
        f"({score.weeks_unscored} without a value), base rate {_pct(score.base_rate)}"
    )


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=Text(title) if title else None, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for i, name in enumerate(columns):
        table.add_column(Text(name), justify="left" if i == 0 else "right", overflow="fold")
    for cells in rows:
        table.add_row(*(Text(c) for c in cells))
    return table


def follow_up_title(f: FollowUp) -> str:
    return (
        f"What people did with the {f.alerts} alerts they were sent: acted on {_pct(f.action_rate)}, "
        f"saved {f.saves} ({_pct(f.save_rate)}), of which {f.saves_churned_anyway} churned anyway"
    )


def follow_up_cells(f: FollowUp) -> list[list[str]]:
    return [[r.label, str(r.alerts), _pct(r.share), str(r.churned), _pct(r.churn_share)] for r in f.rows]


FOLLOW_UP_COLUMNS = ["Outcome recorded", "Alerts", "Share", "Churned within horizon", "Churn share"]


def render_table(report: BacktestReport) -> str:
    """The report as plain text for a 120-column terminal."""
    rows = [_rule_cells(r) for r in report.rules]
    quality = ["rule", "judged", "right", "precision", "lift", "recall", "lead", "verdict"]
    volume = ["rule", "alerts", "accounts", "unjudged", "per_account_month", "per_csm_week", "busiest_csm_week"]
    console = Console(file=io.StringIO(), width=TABLE_WIDTH, color_system=None, highlight=False, emoji=False)
    console.print(Text(_headline(report)))
    console.print(
        _table(
            "How often and how early each warning was right",
            ["Rule", "Judged", "Right", "Precision", "Lift", "Recall", "Lead days (q1\N{EN DASH}q3)", "Verdict"],
            [[r[k] for k in quality] for r in rows],
        ),
        _table(
            "What it costs in attention",
            ["Rule", "Alerts", "Accounts", "Unjudged", "Per acct-month", "Per CSM-week", "Busiest CSM-week"],
            [[r[k] for k in volume] for r in rows],
        ),
    )
    w = report.any_alert_weeks
    console.print(
        Text(
            f"Any alert in the week, per account-week: {w.flagged} of {w.weeks} flagged, "
            f"precision {_pct(w.precision)}, recall {_pct(w.recall)}, lift {_num(w.lift)}. {_criteria(report.params)}"
        )
    )
    if report.alerts_unknown_account:
        console.print(Text(f"Alerts left out (their account has no history): {report.alerts_unknown_account}."))
    for score in report.scores:
        cells = [[c["when"], c["flagged"], c["precision"], c["recall"], c["lift"]] for c in _threshold_cells(score)]
        console.print(Text(_score_title(score)))
        console.print(_table("", ["Flagged when", "Weeks flagged", "Precision", "Recall", "Lift"], cells))
    if report.follow_up is not None:
        console.print(_table(follow_up_title(report.follow_up), FOLLOW_UP_COLUMNS, follow_up_cells(report.follow_up)))
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return out | {"label": value.label} if hasattr(value, "label") else out
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(_jsonable(v) for v in value)
    return value


def report_to_json(report: BacktestReport) -> dict[str, Any]:
    """Every field of the report under its dataclass field name; floats to 4 decimals, None where undefined."""
    body: dict[str, Any] = _jsonable(report)
    body["period"]["days"] = report.period.days
    return {"version": REPORT_JSON_VERSION, **body}


def _label(text: str) -> str:
    return text.replace("$", r"\$")  # a literal dollar, not mathtext


def _precision_recall_plot(report: BacktestReport) -> Markup:
    rows = [r for r in report.rules if r.rule.severity is None]
    fig = new_figure(8, 1.2 + 0.45 * len(rows))
    ax = fig.subplots()
    ys = list(range(len(rows)))
    ax.barh([y - 0.2 for y in ys], [r.precision or 0 for r in rows], height=0.4, label="precision", color="#3b6ea8")
    ax.barh([y + 0.2 for y in ys], [r.recall or 0 for r in rows], height=0.4, label="recall", color="#e0a030")
    if report.base_rate is not None:
        ax.axvline(report.base_rate, color="#b03030", linestyle="--", label="base rate")
    ax.set_yticks(ys, [_label(r.rule.label) for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right", fontsize="small")
    return figure_svg(fig)


def _lead_time_plot(report: BacktestReport) -> Markup:
    bins = report.rules[0].lead.histogram
    fig = new_figure(8, 3)
    ax = fig.subplots()
    ax.bar(range(len(bins)), [b.churners for b in bins], color="#3b6ea8")
    ax.set_xticks(range(len(bins)), [f"{b.from_days}-{b.to_days}" for b in bins], fontsize="small")
    ax.set_xlabel("days from the first alert to the churn")
    ax.set_ylabel("churners")
    return figure_svg(fig)


def _alerts_per_week_plot(report: BacktestReport) -> Markup:
    series = report.rules[0].alerts_per_week
    fig = new_figure(8, 3)
    ax = fig.subplots()
    ax.plot(range(len(series)), [w.alerts for w in series], color="#3b6ea8", drawstyle="steps-mid")
    step = max(1, len(series) // 8)
    ax.set_xticks(
        range(0, len(series), step), [w.week_start.isoformat() for w in series[::step]], fontsize="small", rotation=30
    )
    ax.set_ylabel("risk alerts per week")
    return figure_svg(fig)


def _threshold_plot(score: ScoreMeasures) -> Markup:
    fig = new_figure(8, 3)
    ax = fig.subplots()
    xs = [t.threshold or 0.0 for t in score.thresholds]
    ax.plot(xs, [t.precision or 0 for t in score.thresholds], marker="o", label="precision", color="#3b6ea8")
    ax.plot(xs, [t.recall or 0 for t in score.thresholds], marker="o", label="recall", color="#e0a030")
    if score.base_rate is not None:
        ax.axhline(score.base_rate, color="#b03030", linestyle="--", label="base rate")
    ax.set_xlabel(_label(f"{score.name}: flagged when {'at or above' if score.higher_is_riskier else 'below'}"))
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    return figure_svg(fig)


def render_html(report: BacktestReport, title: str = "Churnwatch backtest") -> str:
    """One self-contained HTML file: headline, definitions, the rule table with verdicts, plots."""
    template = resources.files("services.backtest").joinpath("templates/report.html").read_text(encoding="utf-8")
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    has_alerts = report.alerts > 0
    return env.from_string(template).render(
        title=title,
        report=report,
        headline=_headline(report),
        definitions=plain_definitions(report.params),
        criteria=_criteria(report.params),
        rules=[_rule_cells(r) for r in report.rules],
        any_alert=report.any_alert_weeks,
        pct=_pct,
        num=_num,
        scores=[
            (_score_title(s), _threshold_cells(s), _threshold_plot(s) if s.thresholds else None) for s in report.scores
        ],
        precision_recall_plot=_precision_recall_plot(report) if has_alerts else None,
        lead_time_plot=_lead_time_plot(report) if report.rules[0].lead.days else None,
        alerts_per_week_plot=_alerts_per_week_plot(report) if has_alerts else None,
        follow_up=(
            (follow_up_title(report.follow_up), FOLLOW_UP_COLUMNS, follow_up_cells(report.follow_up))
            if report.follow_up is not None
            else None
        ),
    )
