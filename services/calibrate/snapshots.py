"""Labelled feature snapshots from a history file, taken at day closes exactly as the scorer takes them.

Events are folded in file order with the scorer's own pure core (``windows.apply_event``). An account's day D is
*closed* when its first event of a later day arrives (or at the end of the data): the close of D sees every
event of days <= D that came before it, as in ``services/scorer/evaluate.py``. Memory holds one state per
account, never the events.

Weekly snapshots (for fitting): on the account's weekly grid (its first day + 28, + 35, ... the grid the
backtest's account-weeks use; the first day is the earlier of ``created_date`` and its first event), once the
account has also been observed for 28 days (its first event + 27: a window just opened says little), while it is
alive (no churn on or before D), labelled 1 when it churned within H days after D (D < churned_on <= D + H);
a snapshot whose H days run past the data's last day is dropped (censored). Churn dates come from the outcomes.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from services.backtest.model import AccountHistory, Period
from services.scorer.evaluate import MIN_RISK_OBSERVED_DAYS
from services.scorer.risk_features import FEATURE_NAMES, RiskInputs, risk_inputs
from services.scorer.windows import AccountState, WindowRules, apply_event, churned_by
from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event

# Snapshots start where the scorer starts raising churn_risk: the model is fitted on the accounts it is applied to.
WARMUP_DAYS = MIN_RISK_OBSERVED_DAYS
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One account at one day close; ``values`` in ``FEATURE_NAMES`` order (compact: thousands are kept)."""

    account_id: str
    day: date
    label: bool
    values: tuple[float | None, ...]
    weekly: tuple[float, ...]
    plan: str | None

    def inputs(self) -> RiskInputs:
        return RiskInputs(dict(zip(FEATURE_NAMES, self.values, strict=True)), self.weekly, self.plan)


@dataclass
class _Account:
    state: AccountState = field(default_factory=AccountState)
    first_event: date | None = None
    next_close: date | None = None


# (account id, day, state as of that day's close, profile, observed from): called once per account-day
CloseVisitor = Callable[[str, date, AccountState, AccountProfile | None, date], None]


@dataclass(frozen=True)
class ReplaySpan:
    period: Period  # first to last day with events
    first_event: dict[str, date]


def replay_closes(
    events: Iterable[Event], profiles: Mapping[str, AccountProfile], visit: CloseVisitor, rules: WindowRules
) -> ReplaySpan:
    """Folds ``events`` in order and calls ``visit`` at every day close of every account, from its first event's
    day to the data's last day (an account that sends nothing more still has its days closed)."""
    accounts: dict[str, _Account] = {}
    first = last = None
    for e in events:
        day = e.occurred_at.date()
        first = day if first is None else min(first, day)
        last = day if last is None else max(last, day)
        a = accounts.get(e.account_id)
        if a is None:
            a = accounts[e.account_id] = _Account(first_event=day, next_close=day)
        assert a.next_close is not None and a.first_event is not None
        while a.next_close < day:
            visit(e.account_id, a.next_close, a.state, profiles.get(e.account_id), a.first_event)
            a.next_close += _DAY
        apply_event(a.state, e, rules)
    if first is None or last is None:
        raise ValueError("no events")
    for account_id, a in accounts.items():
        assert a.next_close is not None and a.first_event is not None
        while a.next_close <= last:
            visit(account_id, a.next_close, a.state, profiles.get(account_id), a.first_event)
            a.next_close += _DAY
    return ReplaySpan(Period(first, last), {k: a.first_event for k, a in accounts.items() if a.first_event})


def grid_start(profile: AccountProfile | None, first_event: date) -> date:
    """The first day of the account's weekly grid: its first day (created or first event) + the warm-up."""
    created = profile.created_date if profile is not None else None
    first_day = first_event if created is None else min(created, first_event)
    return first_day + timedelta(days=WARMUP_DAYS)


def observed_enough(day: date, first_event: date) -> bool:
    return (day - first_event).days >= WARMUP_DAYS - 1


@dataclass(frozen=True)
class SnapshotSet:
    snapshots: list[Snapshot]  # labelled, uncensored, in replay order
    accounts: list[AccountHistory]  # for the backtest's measures
    period: Period


def weekly_snapshots(
    events: Iterable[Event],
    profiles: Mapping[str, AccountProfile],
    churned_on: Mapping[str, date],
    *,
    horizon_days: int,
    rules: WindowRules,
) -> SnapshotSet:
    taken: list[Snapshot] = []

    def visit(account_id: str, day: date, state: AccountState, profile: AccountProfile | None, seen: date) -> None:
        start = grid_start(profile, seen)
        if day < start or (day - start).days % 7 or not observed_enough(day, seen):
            return
        churn = churned_on.get(account_id)
        if (churn is not None and churn <= day) or churned_by(state, day):
            return
        inputs = risk_inputs(state, day, profile, rules)
        label = churn is not None and churn <= day + timedelta(days=horizon_days)
        values = tuple(inputs.values[n] for n in FEATURE_NAMES)
        taken.append(Snapshot(account_id, day, label, values, inputs.weekly_activity_per_seat, inputs.plan))

    span = replay_closes(events, profiles, visit, rules)
    last_judged = span.period.end - timedelta(days=horizon_days)
    kept = [s for s in taken if s.day <= last_judged]
    return SnapshotSet(kept, account_histories(span, profiles, churned_on), span.period)


def account_histories(
    span: ReplaySpan, profiles: Mapping[str, AccountProfile], churned_on: Mapping[str, date]
) -> list[AccountHistory]:
    """As the backtest reads a scored deployment: first day = the earlier of created_date and the first event."""
    out = []
    for account_id, seen in sorted(span.first_event.items()):
        profile = profiles.get(account_id)
        created = profile.created_date if profile is not None else None
        first = seen if created is None else min(created, seen)
        churn = churned_on.get(account_id)
        last = min(churn, span.period.end) if churn else span.period.end
        csm = profile.csm.name if profile is not None and profile.csm is not None else None
        plan = profile.plan if profile is not None else None
        out.append(AccountHistory(account_id, first, last, churn, csm, plan))
    return out


def read_events(path: Path) -> Iterator[Event]:
    """One event per line (the one schema), gzip or plain, in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield EVENT_ADAPTER.validate_json(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: not an event: {exc}") from None


def read_profiles(path: Path) -> dict[str, AccountProfile]:
    out = {}
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    profile = AccountProfile.model_validate_json(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: not an account profile: {exc}") from None
                out[profile.account_id] = profile
    return out
