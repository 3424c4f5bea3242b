"""The outcome loop: how often an alert led a person to act, and to a save, beside what churn later showed.

Pure. An alert *acted on* was acknowledged, snoozed or resolved by a person; its *outcome* is what the person
recorded on resolving it (the alerter's ``outcome`` column). Each row also says how many of its alerts' accounts
churned within the horizon after the alert opened: "saved" alerts whose account churned anyway are counted apart,
and the churn share of alerts nobody acted on is the comparison a head of CS asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from services.backtest.measures import churn_follows
from services.backtest.model import FollowUp, FollowUpRow, ReviewedAlert

SAVED = "saved"
NOT_ACTED_ON = "not acted on"
NO_OUTCOME = "acted on, no outcome recorded"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _label(alert: ReviewedAlert) -> str:
    if alert.outcome:
        return alert.outcome
    return NO_OUTCOME if alert.acted else NOT_ACTED_ON


def follow_up(
    alerts: Sequence[ReviewedAlert], churn_dates: Mapping[str, date | None], horizon_days: int
) -> FollowUp | None:
    """None when there are no alerts to speak of."""
    if not alerts:
        return None

    def churned(a: ReviewedAlert) -> bool:
        return churn_follows(churn_dates.get(a.account_id), a.opened_on, horizon_days)

    groups: dict[str, list[ReviewedAlert]] = {}
    for a in alerts:
        groups.setdefault(_label(a), []).append(a)
    order = sorted(groups, key=lambda label: (label in (NO_OUTCOME, NOT_ACTED_ON), label == NOT_ACTED_ON, label))
    rows = []
    for label in order:
        members = groups[label]
        gone = sum(churned(a) for a in members)
        rows.append(
            FollowUpRow(label, len(members), _share(len(members), len(alerts)), gone, _share(gone, len(members)))
        )
    acted = sum(a.acted or a.outcome is not None for a in alerts)
    saves = groups.get(SAVED, [])
    return FollowUp(
        alerts=len(alerts),
        acted=acted,
        action_rate=_share(acted, len(alerts)),
        saves=len(saves),
        save_rate=_share(len(saves), len(alerts)),
        saves_churned_anyway=sum(churned(a) for a in saves),
        rows=tuple(rows),
    )
