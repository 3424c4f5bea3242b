"""What a backtest reads from a deployment or sandbox: the scorer's signal log, daily scores and churn dates.

Read-only: it only selects from the scorer's tables (``signal_log``, ``score_history``, ``account_health``,
``account_profiles``). Churn dates come from `lifecycle` `churned` events as the scorer folded them, or from a CSV
``account_id,churned_on`` (which wins where both name an account: it is what the business recorded).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.backtest.model import AccountHistory, Alert, Period, ReviewedAlert, ScorePoint
from shared.db import build_engine
from shared.settings import CommonSettings
from shared.signals import SignalType

_DAY0 = date(2000, 1, 1)  # the scorer's state codec counts days from here
# good news, and data problems (about a source, not an account), are no churn warnings
NOT_RISK = (SignalType.EXPANSION.value, SignalType.DATA_QUALITY.value)

_ACCOUNTS = text(
    "SELECT h.account_id, (h.state->>'churned')::int AS churned, p.profile->'csm'->>'name' AS csm,"
    " p.profile->>'plan' AS plan, (p.profile->>'created_date')::date AS created"
    " FROM account_health h LEFT JOIN account_profiles p USING (account_id)"
)
_FIRST_LAST = text("SELECT account_id, min(day) AS first, max(day) AS last FROM score_history GROUP BY account_id")
_ALERTS = text(
    "SELECT account_id, signal_type, severity, (occurred_at AT TIME ZONE 'UTC')::date AS day FROM signal_log"
    " WHERE NOT recovered AND signal_type <> ALL(CAST(:not_risk AS text[])) ORDER BY occurred_at"
)
_ALERTER_COLUMNS = text(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'alerts'"
)
# Alerts a person was told of (live notices; historic and shadow ones reached nobody), and what they did with them.
_REVIEWED = (
    "SELECT account_id, signal_type, (opened_at AT TIME ZONE 'UTC')::date AS opened_on,"
    " (acknowledged_at IS NOT NULL OR snoozed_until IS NOT NULL) AS acted, {outcome} AS outcome FROM alerts"
    " WHERE notice_mode = 'live' AND signal_type <> ALL(CAST(:not_risk AS text[]))"
)
_SCORES = text("SELECT account_id, day, score, risk FROM score_history ORDER BY account_id, day")


class OutcomesFileError(ValueError):
    """The outcomes CSV cannot be read; the message names the file, the line and the problem."""


@dataclass(frozen=True)
class BacktestInputs:
    accounts: list[AccountHistory]
    alerts: list[Alert]
    health_scores: list[ScorePoint]
    period: Period
    risk_estimates: list[ScorePoint] = field(default_factory=list)  # at day closes, where a model ran
    reviewed: list[ReviewedAlert] | None = None  # None: no alerter tables in this schema


def read_outcomes_csv(path: Path) -> dict[str, date]:
    """``account_id,churned_on`` (ISO dates) with a header line."""
    out: dict[str, date] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"account_id", "churned_on"} <= set(reader.fieldnames):
            raise OutcomesFileError(f"{path}:1: the header must name account_id and churned_on")
        for row in reader:
            try:
                out[row["account_id"]] = date.fromisoformat(row["churned_on"])
            except (TypeError, ValueError):
                raise OutcomesFileError(
                    f"{path}:{reader.line_num}: churned_on: not an ISO date: {row.get('churned_on')!r}"
                ) from None
    return out


def histories(
    rows: Iterable[Mapping[str, Any]], spans: Mapping[str, tuple[date, date]], outcomes: Mapping[str, date], end: date
) -> list[AccountHistory]:
    """One history per scored account: first day observed, churn date (the CSV's, else the events'), owner."""
    out = []
    for r in rows:
        account_id = r["account_id"]
        if account_id not in spans:
            continue  # never scored a day: nothing to judge
        first = spans[account_id][0]
        if r["created"] is not None:
            first = min(first, r["created"])
        churned = outcomes.get(account_id)
        if churned is None and r["churned"] is not None:
            churned = _DAY0 + timedelta(days=int(r["churned"]))
        last = min(churned, end) if churned else end
        out.append(AccountHistory(account_id, first, last, churned, r["csm"], r["plan"]))
    return out


async def load_inputs(settings: CommonSettings, outcomes: Mapping[str, date] | None = None) -> BacktestInputs:
    engine = build_engine(settings)
    try:
        async with engine.connect() as conn:
            spans = {r.account_id: (r.first, r.last) for r in await conn.execute(_FIRST_LAST)}
            accounts = [dict(r._mapping) for r in await conn.execute(_ACCOUNTS)]
            alerts = [
                Alert(r.account_id, r.signal_type, r.severity, r.day)
                for r in await conn.execute(_ALERTS, {"not_risk": list(NOT_RISK)})
            ]
            rows = list(await conn.execute(_SCORES))
            reviewed = await _reviewed_alerts(conn)
    finally:
        await engine.dispose()
    if not spans:
        raise LookupError(f"schema {settings.database_schema!r} has no score history: nothing was scored there")
    period = Period(min(s for s, _ in spans.values()), max(e for _, e in spans.values()))
    scores = [ScorePoint(r.account_id, r.day, float(r.score)) for r in rows]
    risks = [ScorePoint(r.account_id, r.day, float(r.risk)) for r in rows if r.risk is not None]
    return BacktestInputs(
        histories(accounts, spans, outcomes or {}, period.end), alerts, scores, period, risks, reviewed
    )


async def _reviewed_alerts(conn: AsyncConnection) -> list[ReviewedAlert] | None:
    """The alerter's alerts in the same schema, if it has run there (read-only)."""
    columns = set((await conn.execute(_ALERTER_COLUMNS)).scalars())
    if not columns:
        return None
    outcome = "outcome" if "outcome" in columns else "NULL::text"
    result = await conn.execute(text(_REVIEWED.format(outcome=outcome)), {"not_risk": list(NOT_RISK)})
    return [ReviewedAlert(r.account_id, r.signal_type, r.opened_on, r.acted, r.outcome) for r in result]
