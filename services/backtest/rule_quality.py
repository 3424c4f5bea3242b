"""A backtest's per-rule figures as the rule-quality file the scorer attaches to each signal. Pure."""

from __future__ import annotations

from typing import Any

from services.backtest.model import BacktestReport
from services.scorer.rule_quality import rule_name, rule_quality_document
from shared.signals import RuleQuality


def rule_quality_from_report(report: BacktestReport, source: str) -> dict[str, Any]:
    """Every rule with judged alerts, by type and by type/severity (the overall row is not a rule)."""
    rules = {
        rule_name(r.rule.signal_type, r.rule.severity): RuleQuality(
            precision=None if r.precision is None else round(r.precision, 4),
            lift=None if r.lift is None else round(r.lift, 3),
            alerts_per_account_month=None
            if r.alerts_per_account_month is None
            else round(r.alerts_per_account_month, 4),
            judged_alerts=r.judged,
            source=source,
        )
        for r in report.rules
        if r.rule.signal_type is not None and r.judged > 0
    }
    return rule_quality_document(rules, source)
