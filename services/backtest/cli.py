"""``churnwatch backtest``: how often and how early each warning of a deployment or sandbox was right."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

from services.alerter.notice_mode import DEFAULT_MIN_RULE_LIFT
from services.backtest.follow_up import follow_up
from services.backtest.measures import build_report
from services.backtest.model import Alert, BacktestParams, BacktestReport
from services.backtest.rule_quality import rule_quality_from_report
from services.backtest.source import BacktestInputs, OutcomesFileError, load_inputs, read_outcomes_csv
from services.demo.sandbox import SandboxName
from services.scorer.rule_quality import (
    RuleQualityError,
    RuleQualityTable,
    default_rule_quality_path,
    load_rule_quality,
)
from shared.settings import CommonSettings
from shared.signals import Severity, SignalType

HEALTH_SCORE = "health score"
RISK_ESTIMATE = "churn-risk estimate"
ROUTED = "routed to people"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backtest",
        help="measure every rule's precision, lift, recall, lead time and alert volume against churn outcomes",
        description=__doc__,
    )
    p.add_argument("--sandbox", help="a named sandbox (default: the deployment CHURNWATCH_* points at)")
    p.add_argument("--outcomes", type=Path, help="CSV account_id,churned_on (default: lifecycle churned events)")
    p.add_argument("--horizon-days", type=int, default=60, help="an alert is right if churn follows within this")
    p.add_argument("--quality", type=Path, help="the rule-quality file the alerter routes by (default: packaged)")
    p.add_argument(
        "--min-rule-lift", type=float, default=DEFAULT_MIN_RULE_LIFT, help="the alerter's CHURNWATCH_MIN_RULE_LIFT"
    )
    p.add_argument("--json", dest="json_path", type=Path, help="write the report as JSON here ('-' for stdout)")
    p.add_argument("--html", dest="html_path", type=Path, help="write the self-contained HTML report here")
    p.add_argument(
        "--rule-quality",
        dest="quality_path",
        type=Path,
        help="write each rule's precision and lift for the scorer to attach to signals (CHURNWATCH_RULE_QUALITY_PATH)",
    )


def routed_pairs(alerts: list[Alert], quality: RuleQualityTable, min_lift: float) -> frozenset[tuple[str, str]]:
    """The (type, severity) pairs the alerter routes to people: those whose rule's lift is unknown or at the floor."""
    out = set()
    for kind, severity in {(a.signal_type, a.severity) for a in alerts}:
        q = quality.lookup(SignalType(kind), Severity(severity))
        if q is None or q.lift is None or q.lift >= min_lift:
            out.add((kind, severity))
    return frozenset(out)


def measure(
    inputs: BacktestInputs,
    *,
    horizon_days: int = 60,
    quality: RuleQualityTable | None = None,
    min_rule_lift: float = DEFAULT_MIN_RULE_LIFT,
) -> BacktestReport:
    """The report, with a row for the alerts that reach people: every rule the alerter does not keep quiet."""
    params = BacktestParams(horizon_days=horizon_days)
    scores = {HEALTH_SCORE: (inputs.health_scores, False)}
    if inputs.risk_estimates:
        scores[RISK_ESTIMATE] = (inputs.risk_estimates, True)
    table = quality if quality is not None else load_rule_quality(default_rule_quality_path())
    groups = {ROUTED: routed_pairs(inputs.alerts, table, min_rule_lift)}
    report = build_report(inputs.accounts, inputs.alerts, scores, period=inputs.period, params=params, groups=groups)
    if inputs.reviewed is None:
        return report
    churn_dates = {a.account_id: a.churned_on for a in inputs.accounts}
    return replace(report, follow_up=follow_up(inputs.reviewed, churn_dates, params.horizon_days))


def write_outputs(
    report: BacktestReport,
    *,
    json_path: Path | None,
    html_path: Path | None,
    title: str,
    quality_path: Path | None = None,
) -> None:
    from services.backtest.render import render_html, report_to_json  # matplotlib: only when a report is written

    if json_path is not None:
        body = json.dumps(report_to_json(report), indent=2)
        if str(json_path) == "-":
            print(body)
        else:
            json_path.write_text(body + "\n")
            print(f"JSON report: {json_path}")
    if html_path is not None:
        html_path.write_text(render_html(report, title=title))
        print(f"HTML report: {html_path.resolve()}")
    if quality_path is not None:
        source = f"{title}, {report.period.start} to {report.period.end}, horizon {report.params.horizon_days} days"
        quality_path.write_text(json.dumps(rule_quality_from_report(report, source), indent=2) + "\n")
        print(f"rule quality: {quality_path}")


def run(args: argparse.Namespace) -> int:
    settings = SandboxName.named(args.sandbox).settings() if args.sandbox else CommonSettings()
    try:
        outcomes = read_outcomes_csv(args.outcomes) if args.outcomes else None
        inputs = asyncio.run(load_inputs(settings, outcomes))
        quality = load_rule_quality(args.quality) if args.quality else None
    except (OutcomesFileError, RuleQualityError, LookupError, OSError) as exc:
        print(f"churnwatch backtest: {exc}", file=sys.stderr)
        return 2
    report = measure(inputs, horizon_days=args.horizon_days, quality=quality, min_rule_lift=args.min_rule_lift)
    if str(args.json_path) != "-":
        from services.backtest.render import render_table

        print(render_table(report))
    title = f"Churnwatch backtest: {args.sandbox or settings.database_schema}"
    write_outputs(
        report, json_path=args.json_path, html_path=args.html_path, title=title, quality_path=args.quality_path
    )
    return 0
