"""From a CSV row to the dict an event (or an account profile) is validated from, pure.

A mapping names, per field, the column it comes from (``--map occurred_at=ts``) or a constant for a field the
file lacks (``--kind usage``, ``--const action=login``). A column named exactly like a field maps to it without
being told; dotted fields build nested objects (``properties.plan``, ``csm.email``). An empty cell leaves its
field out, so the schema's default (or its "field required") applies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.accounts import AccountProfile, Contact
from shared.events import FeedbackEvent, LifecycleEvent, TicketEvent, UsageEvent

_SET_BY_LOADER = {"received_at", "flags"}
EVENT_FIELDS: frozenset[str] = frozenset(
    set().union(*(m.model_fields for m in (UsageEvent, TicketEvent, FeedbackEvent, LifecycleEvent))) - _SET_BY_LOADER
)
PROFILE_FIELDS: frozenset[str] = frozenset(
    {f for f in AccountProfile.model_fields if f not in ("csm", "support_route")}
    | {f"{contact}.{part}" for contact in ("csm", "support_route") for part in Contact.model_fields}
)


class MappingError(ValueError):
    """A mapping option that cannot work: an unknown field, or ``field=column`` written wrong."""


def _known(name: str, fields: frozenset[str]) -> bool:
    return name in fields or (name.startswith("properties.") and "properties" in fields and len(name) > 11)


def parse_pairs(pairs: Iterable[str], fields: frozenset[str], option: str) -> dict[str, str]:
    """``["account_id=acct", ...]`` -> ``{"account_id": "acct"}``, every field checked against the schema."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name or not value:
            raise MappingError(f"{option} {pair!r}: write it as field=value")
        if not _known(name, fields):
            raise MappingError(f"{option} {pair!r}: {name!r} is not a field (fields: {', '.join(sorted(fields))})")
        out[name] = value
    return out


@dataclass(frozen=True)
class ColumnMapping:
    """Field -> column and field -> constant; built once per file from its header."""

    columns: dict[str, str]
    constants: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_header(
        cls, header: list[str], explicit: Mapping[str, str], constants: Mapping[str, str], fields: frozenset[str]
    ) -> ColumnMapping:
        """The explicit mapping plus every column named like a field that is neither mapped nor a constant."""
        columns = dict(explicit)
        taken = set(explicit.values())
        for column in header:
            if column not in taken and column not in columns and column not in constants and _known(column, fields):
                columns[column] = column
        return cls(columns, dict(constants))

    def missing_columns(self, header: list[str]) -> list[str]:
        present = set(header)
        return sorted({c for c in self.columns.values() if c not in present})

    def column_of(self, field_path: str) -> str | None:
        """The column a rejected field came from (``csm.email`` for ``csm``), to name it in the reject."""
        if field_path in self.columns:
            return self.columns[field_path]
        related = (
            c for n, c in self.columns.items() if field_path.startswith(f"{n}.") or n.startswith(f"{field_path}.")
        )
        return next(related, None)

    def item(self, row: Mapping[str, str | None]) -> dict[str, Any]:
        """The row as the nested dict the schema validates; empty cells are left out."""
        out: dict[str, Any] = {}
        for name, value in self.constants.items():
            _put(out, name, value)
        for name, column in self.columns.items():
            cell = row.get(column)
            if cell is not None and cell != "":
                _put(out, name, cell)
        return out


def _put(target: dict[str, Any], dotted: str, value: str) -> None:
    head, _, rest = dotted.partition(".")
    if not rest:
        target[head] = value
        return
    inner = target.setdefault(head, {})
    if isinstance(inner, dict):
        _put(inner, rest, value)
