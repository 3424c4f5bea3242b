"""The alert lifecycle and its dedup rule. Pure.

An alert is keyed by (account, signal type). An open alert is not sent again unless the severity rises;
a recovery resolves it and sends a short "resolved" notice; a new signal after resolution reopens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.signals import RiskSignal, Severity


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Notice(StrEnum):
    NEW = "new"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class ExistingAlert:
    state: AlertState
    severity: Severity


@dataclass(frozen=True)
class Decision:
    state: AlertState
    severity: Severity
    notice: Notice | None  # None: record it, send nothing


def decide(existing: ExistingAlert | None, signal: RiskSignal) -> Decision | None:
    """What a signal does to the alert it belongs to; None when it changes nothing."""
    if signal.recovered:
        if existing is None or existing.state is AlertState.RESOLVED:
            return None
        return Decision(AlertState.RESOLVED, existing.severity, Notice.RESOLVED)
    if existing is None or existing.state is AlertState.RESOLVED:
        return Decision(AlertState.OPEN, signal.severity, Notice.NEW)
    if signal.severity.rank > existing.severity.rank:
        return Decision(
            existing.state if existing.state is not AlertState.SNOOZED else AlertState.OPEN,
            signal.severity,
            Notice.ESCALATED,
        )
    return None
