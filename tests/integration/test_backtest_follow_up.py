"""The backtest reads what people recorded on the alerter's alerts (the outcome loop) from the same schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from services.alerter.tables import alerts
from services.backtest.cli import measure
from services.backtest.follow_up import NOT_ACTED_ON
from services.backtest.source import load_inputs
from services.scorer.tables import account_health, score_history
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration

OPENED = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _alert(account_id: str, **columns: Any) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "signal_type": "usage_drop",
        "state": "open",
        "severity": "warning",
        "last_signal": {},
        "opened_at": OPENED,
        **columns,
    }


async def test_outcomes_recorded_on_alerts_reach_the_backtest(sandbox: Sandbox) -> None:
    async with sandbox.engine.begin() as conn:
        for account in ("a1", "a2", "a3"):
            empty: dict[str, Any] = {"state": {}, "components": [], "active_signals": {}, "history": {}}
            await conn.execute(insert(account_health).values(account_id=account, **empty))
            for day in (date(2026, 3, 1), date(2026, 4, 30)):
                await conn.execute(insert(score_history).values(account_id=account, day=day, score=50, band="yellow"))
        for row in (
            _alert("a1", state="resolved", acknowledged_at=OPENED, resolved_at=OPENED, outcome="saved"),
            _alert("a2", state="acknowledged", acknowledged_at=OPENED),
            _alert("a3"),
            _alert("a3", signal_type="inactivity", notice_mode="historic"),  # nobody was told of this one
        ):
            await conn.execute(insert(alerts).values(row))
    inputs = await load_inputs(sandbox.settings, {"a3": date(2026, 3, 20)})
    assert inputs.reviewed is not None and len(inputs.reviewed) == 3
    follow_up = measure(inputs).follow_up
    assert follow_up is not None
    assert (follow_up.alerts, follow_up.acted, follow_up.saves, follow_up.saves_churned_anyway) == (3, 2, 1, 0)
    ignored = next(r for r in follow_up.rows if r.label == NOT_ACTED_ON)
    assert (ignored.alerts, ignored.churned) == (1, 1)
