"""An account's record as its ``account_health`` row: the columns it is stored in and read back from. Pure.

The state is versioned JSON (services/scorer/codec.py); the score history is ``{"v": version, "d": {day: [score,
*points]}}`` read by name through its layout (services/scorer/layouts.py); active signals name their fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.scorer.codec import state_from_json, state_to_json
from services.scorer.detectors import ActiveSignal
from services.scorer.evaluate import AccountRecord, Snapshot
from services.scorer.layouts import HISTORY_LAYOUTS, RowLayouts
from services.scorer.scoring import HealthScore
from shared.signals import Band, Severity, SignalType


def history_to_json(history: dict[date, Snapshot], layouts: RowLayouts = HISTORY_LAYOUTS) -> dict[str, Any]:
    """``{"v": version, "d": {day: [score, *points in the version's layout]}}``."""
    names = layouts.current_fields[1:]
    days = {d.isoformat(): [s.score, *map(s.points.get, names)] for d, s in sorted(history.items())}
    return {"v": layouts.current, "d": days}


def history_from_json(data: dict[str, Any], layouts: RowLayouts = HISTORY_LAYOUTS) -> dict[date, Snapshot]:
    """Reads every format version by name; version 1 (the first release) is the bare ``{day: values}``."""
    version, days = (int(data["v"]), data.get("d", {})) if "v" in data else (1, data)
    out = {}
    for d, values in days.items():
        named = layouts.named(version, values)
        score = named.pop("score", None)
        points = {n: float(v) for n, v in named.items() if v is not None}
        out[date.fromisoformat(d)] = Snapshot(float(score or 0.0), points)
    return out


def health_to_json(h: HealthScore) -> list[dict[str, Any]]:
    return [vars(c) for c in h.components]


RECORD_COLUMNS = (
    "account_id",
    "state",
    "closed_score",
    "closed_band",
    "closed_on",
    "active_signals",
    "as_of",
    "history",
)


def record_from_row(row: Any) -> AccountRecord:
    """From an account_health row's columns in ``RECORD_COLUMNS``. The score of the last close comes back
    without its components: only its score and band are read (hysteresis, "score before" in signals)."""
    health = None
    if row.closed_score is not None and row.closed_band is not None:
        health = HealthScore(row.closed_score, Band(row.closed_band), ())
    return AccountRecord(
        state=state_from_json(row.state),
        health=health,
        active=active_from_json(row.active_signals, row.as_of),
        as_of=row.as_of,
        history=history_from_json(row.history or {}),
        closed_on=row.closed_on,
    )


def record_to_row(record: AccountRecord, tip: HealthScore | None) -> dict[str, Any]:
    """The record's columns, with ``tip`` (the score at the tip) as the score the API shows."""
    closed = record.health
    return {
        "state": state_to_json(record.state),
        "score": tip.score if tip else None,
        "band": tip.band.value if tip else None,
        "components": health_to_json(tip) if tip else [],
        "closed_score": closed.score if closed else None,
        "closed_band": closed.band.value if closed else None,
        "closed_on": record.closed_on,
        "active_signals": {k.value: _active_to_json(v) for k, v in record.active.items()},
        "as_of": record.as_of,
        "history": history_to_json(record.history),
    }


def active_from_json(data: dict[str, Any], as_of: datetime | None) -> dict[SignalType, ActiveSignal]:
    """Reads both forms: {type: {severity, last_held}} and the first release's {type: severity}."""
    out = {}
    for k, v in data.items():
        if isinstance(v, str):
            held = as_of.date() if as_of else date.min
            out[SignalType(k)] = ActiveSignal(Severity(v), held)
        else:
            since = date.fromisoformat(v["since"]) if v.get("since") else None
            out[SignalType(k)] = ActiveSignal(Severity(v["severity"]), date.fromisoformat(v["last_held"]), since)
    return out


def _active_to_json(a: ActiveSignal) -> dict[str, str]:
    out = {"severity": a.severity.value, "last_held": a.last_held.isoformat()}
    return out | ({"since": a.since.isoformat()} if a.since else {})
