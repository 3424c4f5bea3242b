"""Compact JSON for an account's window state (what goes into account_health.state). Pure.

A day is a list of numbers in ``_DAY_FIELDS`` order with trailing zeros trimmed, keyed by days since
2000-01-01; bitmaps are hex strings. Readable with ``jq``, and a busy account stays around 1-2 KB.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any

from services.scorer.windows import AccountState, DayBucket

_DAY0 = date(2000, 1, 1)
_DAY0_ORDINAL = _DAY0.toordinal()
_DAY_FIELDS = [f.name for f in fields(DayBucket)]
_BITMAPS = {"users", "features"}


_DAY_VALUES = attrgetter(*_DAY_FIELDS)
_BITMAP_AT = frozenset(i for i, name in enumerate(_DAY_FIELDS) if name in _BITMAPS)
_FIRST_BITMAP = min(_BITMAP_AT)
_FLOAT_AT = tuple(i for i, f in enumerate(fields(DayBucket)) if f.type in (float, "float"))
if set(range(_FIRST_BITMAP, len(_DAY_FIELDS))) != _BITMAP_AT:
    raise RuntimeError("DayBucket's bitmaps must be its last fields: days are read back positionally")


def _day_to_json(b: DayBucket) -> list[Any]:
    # every touched account's days are written on every batch, so this is kept lean
    values = _DAY_VALUES(b)
    n = len(values)
    while n and not values[n - 1]:  # trailing zeros (and empty bitmaps) are trimmed
        n -= 1
    out = list(values[:n])
    for i in _FLOAT_AT:  # 3.0 is written 3
        if i < n and (v := out[i]).__class__ is float and v.is_integer():
            out[i] = int(v)
    for i in range(_FIRST_BITMAP, n):
        out[i] = format(out[i], "x")
    return out


def _day_from_json(values: list[Any]) -> DayBucket:
    # positional, as written: the bitmaps are the last fields, so only they need converting
    if len(values) > _FIRST_BITMAP:
        values = values[:_FIRST_BITMAP] + [int(v, 16) for v in values[_FIRST_BITMAP:]]
    return DayBucket(*values)


def _opt_date(d: date | None) -> int | None:
    return None if d is None else (d - _DAY0).days


def _date_of(n: int | None) -> date | None:
    return None if n is None else _DAY0 + timedelta(days=n)


def state_to_json(state: AccountState) -> dict[str, Any]:
    days = {str(d.toordinal() - _DAY0_ORDINAL): _day_to_json(b) for d, b in sorted(state.days.items())}
    out: dict[str, Any] = {"d": days}
    optional: dict[str, Any] = {
        "la": state.last_activity_at.isoformat() if state.last_activity_at else None,
        "wm": state.watermark.isoformat() if state.watermark else None,
        "seats": list(state.seats) if state.seats else None,
        "nps": list(state.latest_nps) if state.latest_nps else None,
        "signup": _opt_date(state.signed_up_on),
        "activated": _opt_date(state.activated_on),
        "churned": _opt_date(state.churned_on),
        "returned": _opt_date(state.returned_on),
        "open": dict(sorted(state.open_tickets.items())) or None,
        "early": dict(sorted(state.early_resolutions.items())) or None,
        "late": state.late_events or None,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


def state_from_json(data: dict[str, Any]) -> AccountState:
    la, wm = data.get("la"), data.get("wm")
    seats, nps = data.get("seats"), data.get("nps")
    return AccountState(
        days={date.fromordinal(_DAY0_ORDINAL + int(k)): _day_from_json(v) for k, v in data.get("d", {}).items()},
        last_activity_at=datetime.fromisoformat(la) if la else None,
        watermark=datetime.fromisoformat(wm) if wm else None,
        seats=(int(seats[0]), int(seats[1])) if seats else None,
        latest_nps=(int(nps[0]), int(nps[1])) if nps else None,
        signed_up_on=_date_of(data.get("signup")),
        activated_on=_date_of(data.get("activated")),
        churned_on=_date_of(data.get("churned")),
        returned_on=_date_of(data.get("returned")),
        open_tickets=dict(data.get("open") or {}),
        early_resolutions=dict(data.get("early") or {}),
        late_events=int(data.get("late") or 0),
    )
