"""The portfolio view's sums over the week's alerts (pure), and where the latest backtest report is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

NO_CSM = "(no CSM)"


@dataclass(frozen=True)
class WeekOfAlerts:
    total: int
    by_type: list[tuple[str, int]]
    by_csm: list[tuple[str, int]]


def _opened(alert: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(alert.get("opened_at")))
    except ValueError:
        return None


def alerts_since(alerts: Iterable[Mapping[str, Any]], since: datetime) -> list[Mapping[str, Any]]:
    """The alerts opened at or after ``since`` (the alerter may not filter by itself)."""
    return [a for a in alerts if (opened := _opened(a)) is not None and opened >= since]


def week_of_alerts(alerts: list[Mapping[str, Any]], csm_of: Mapping[str, str | None]) -> WeekOfAlerts:
    by_type = Counter(str(a.get("signal_type")) for a in alerts)
    by_csm = Counter(csm_of.get(str(a.get("account_id"))) or NO_CSM for a in alerts)
    return WeekOfAlerts(
        total=len(alerts),
        by_type=sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0])),
        by_csm=sorted(by_csm.items(), key=lambda kv: (-kv[1], kv[0])),
    )


def latest_backtest_report(folder: Path | None) -> Path | None:
    """The newest ``*.html`` under the folder (``make backtest`` leaves backtests/<run>/backtest.html)."""
    if folder is None or not folder.is_dir():
        return None
    reports = [p for p in folder.rglob("*.html") if p.is_file()]
    return max(reports, key=lambda p: p.stat().st_mtime) if reports else None
