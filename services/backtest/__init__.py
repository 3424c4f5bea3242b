"""``churnwatch backtest``: were the warnings right, and early enough? Pure measures here; rendering in ``render``."""

from services.backtest.measures import build_report, rule_verdict, score_measures
from services.backtest.model import (
    AccountHistory,
    Alert,
    BacktestParams,
    BacktestReport,
    Period,
    ScorePoint,
    VerdictCriteria,
)

__all__ = [
    "AccountHistory",
    "Alert",
    "BacktestParams",
    "BacktestReport",
    "Period",
    "ScorePoint",
    "VerdictCriteria",
    "build_report",
    "rule_verdict",
    "score_measures",
]
