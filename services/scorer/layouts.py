"""The stored formats of the scorer's positional rows, declared once per version. Pure.

A day of an account's state and a day of its score history are stored as lists of numbers (compact: a busy
account stays well under 2 KB); the names of those positions are declared here, per format version, and each
stored value carries its version. A row is read through the layout of *its* version, by name, so adding a
field (or a scorecard component) never shifts old values into new names: add a layout with a higher version,
and rows of every older version still read back (a name the code no longer knows is dropped, a name it knows
that the row lacks takes its default).

Start-up refuses a code base whose current fields differ from the newest layout (see ``check_current``): adding
a ``DayBucket`` field or a scorecard component without declaring a new layout fails loudly, never silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class LayoutError(RuntimeError):
    """The code's fields and the newest declared layout differ, or a row names an unknown version."""


@dataclass(frozen=True)
class RowLayouts:
    """The field names of one kind of positional row, per format version (1 = rows stored without a version)."""

    kind: str
    versions: Mapping[int, tuple[str, ...]]

    @property
    def current(self) -> int:
        return max(self.versions)

    @property
    def current_fields(self) -> tuple[str, ...]:
        return self.versions[self.current]

    def fields_of(self, version: int) -> tuple[str, ...]:
        found = self.versions.get(version)
        if found is None:
            raise LayoutError(f"{self.kind}: a row of format version {version}, newer than this scorer knows")
        return found

    def named(self, version: int, values: Sequence[Any]) -> dict[str, Any]:
        """A row's values by name (a trimmed row names only its first values)."""
        return dict(zip(self.fields_of(version), values, strict=False))

    def check_current(self, fields: Iterable[str], *, ordered: bool = True) -> None:
        wanted = tuple(fields) if ordered else tuple(sorted(fields))
        newest = self.current_fields if ordered else tuple(sorted(self.current_fields))
        if wanted != newest:
            raise LayoutError(
                f"{self.kind}: the code's fields {wanted} are not the newest declared layout (version"
                f" {self.current}: {newest}); declare a new version in services/scorer/layouts.py"
            )


_DAY_V1 = (
    "logins",
    "feature_uses",
    "key_feature_uses",
    "api_calls",
    "tickets_opened",
    "tickets_escalated",
    "tickets_urgent",
    "tickets_resolved",
    "resolve_hours",
    "resolutions_timed",
    "csat_sum",
    "csat_count",
    "nps_sum",
    "nps_count",
    "users",
    "features",
)
# v1: the first release (no "v" in the row); v2: the same day layout, the state names its version.
DAY_LAYOUTS = RowLayouts("account state day", {1: _DAY_V1, 2: _DAY_V1})

# A score-history day: the score, then each component's points. v1 was the sorted component names of its time.
_HISTORY_V1 = (
    "score",
    "engagement_breadth",
    "escalations",
    "onboarding_progress",
    "recency",
    "renewal_proximity",
    "seat_utilisation",
    "sentiment",
    "support_load",
    "usage_trend",
)
HISTORY_LAYOUTS = RowLayouts("score history day", {1: _HISTORY_V1, 2: _HISTORY_V1})
