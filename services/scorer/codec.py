"""Compact, versioned JSON for an account's window state (what goes into account_health.state). Pure.

The state names its format version (``"v"``; a row without one is version 1). A day is a list of numbers in
the order of its version's layout (``layouts.DAY_LAYOUTS``) with trailing zeros trimmed, keyed by days since
2000-01-01; bitmaps are hex strings. Days are read back by field name through their version's layout, so a
field added to ``DayBucket`` (with a new layout) never shifts stored values. Readable with ``jq``, and a busy
account stays around 1-2 KB.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any

from services.scorer.layouts import DAY_LAYOUTS, RowLayouts
from services.scorer.windows import AccountState, DayBucket

_DAY0 = date(2000, 1, 1)
_DAY0_ORDINAL = _DAY0.toordinal()
_BITMAPS = frozenset({"users", "features"})


class DayCodec:
    """Days of one bucket type, written in the newest layout and read by name in the layout of their version."""

    def __init__(self, bucket: type[Any], layouts: RowLayouts) -> None:
        names = [f.name for f in fields(bucket)]
        layouts.check_current(names)
        self.bucket = bucket
        self.layouts = layouts
        self.version = layouts.current
        self._values = attrgetter(*names)
        self._known = frozenset(names)
        self._bitmap_at = tuple(i for i, n in enumerate(names) if n in _BITMAPS)
        self._float_at = tuple(i for i, f in enumerate(fields(bucket)) if f.type in (float, "float"))

    def to_json(self, b: Any) -> list[Any]:
        # every changed account's days are written at each checkpoint, so this is kept lean
        values = self._values(b)
        n = len(values)
        while n and not values[n - 1]:  # trailing zeros (and empty bitmaps) are trimmed
            n -= 1
        out = list(values[:n])
        for i in self._float_at:  # 3.0 is written 3
            if i < n and (v := out[i]).__class__ is float and v.is_integer():
                out[i] = int(v)
        for i in self._bitmap_at:
            if i < n:
                out[i] = format(out[i], "x")
        return out

    def from_json(self, values: list[Any], version: int) -> Any:
        named = self.layouts.named(version, values)
        for name in _BITMAPS.intersection(named):
            named[name] = int(named[name], 16)
        return self.bucket(**{k: v for k, v in named.items() if k in self._known})


DAYS = DayCodec(DayBucket, DAY_LAYOUTS)
STATE_VERSION = DAYS.version


def _opt_date(d: date | None) -> int | None:
    return None if d is None else (d - _DAY0).days


def _date_of(n: int | None) -> date | None:
    return None if n is None else _DAY0 + timedelta(days=n)


def state_to_json(state: AccountState, days: DayCodec = DAYS) -> dict[str, Any]:
    encoded = {str(d.toordinal() - _DAY0_ORDINAL): days.to_json(b) for d, b in sorted(state.days.items())}
    out: dict[str, Any] = {"v": days.version, "d": encoded}
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
        "src": {n: _opt_date(d) for n, d in sorted(state.sources.items())} or None,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


def state_from_json(data: dict[str, Any], days: DayCodec = DAYS) -> AccountState:
    """Reads every format version (a state without ``"v"`` is version 1, the first release)."""
    version = int(data.get("v", 1))
    la, wm = data.get("la"), data.get("wm")
    seats, nps = data.get("seats"), data.get("nps")
    return AccountState(
        days={
            date.fromordinal(_DAY0_ORDINAL + int(k)): days.from_json(v, version) for k, v in data.get("d", {}).items()
        },
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
        sources={n: _DAY0 + timedelta(days=int(d)) for n, d in (data.get("src") or {}).items()},
    )
