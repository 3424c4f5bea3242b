"""Builders shared by the unit tests of the scoring core."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.scorer.metrics import WindowMetrics


def metrics(**overrides: Any) -> WindowMetrics:
    """A healthy account's window metrics, with ``overrides`` applied."""
    base: dict[str, Any] = dict(
        as_of=date(2026, 11, 1),
        activity_current=10,
        activity_baseline=10,
        has_baseline=True,
        active_users_current=5,
        features_current=5,
        tickets_current=0,
        tickets_baseline_weekly=0.5,
        escalations_current=0,
        days_since_activity=0,
        observed_days=60,
    )
    base.update(overrides)
    return WindowMetrics(**base)
