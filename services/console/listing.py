"""The at-risk list's filters, pure: read from the page's query string, checked field by field, turned into the
scorer's query, and the links of the page (sort headers, paging) built back from them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from services.console.upstream import FilterRejected
from shared.accounts import TouchTier
from shared.signals import Band, SignalType

# the scorer's sort keys (GET /v1/accounts?sort=), each in its natural direction
SORT_KEYS = {
    "band": "band, then score",
    "score": "lowest score",
    "change": "biggest 7-day fall",
    "risk": "highest churn risk",
    "arr": "largest ARR",
    "renewal": "soonest renewal",
    "csm": "CSM",
    "name": "name",
}
KNOWN_FIELDS = {"band", "csm", "tier", "plan", "signal_type", "q", "sort", "page", "mine"}
MAX_PAGE = 10_000


@dataclass(frozen=True)
class ListFilters:
    band: str | None = None
    csm: str | None = None
    tier: str | None = None
    plan: str | None = None
    signal_type: str | None = None
    q: str | None = None
    sort: str = "band"
    page: int = 1
    mine: bool = False

    def scorer_params(self, *, me: str, page_size: int) -> list[tuple[str, str | int]]:
        csm = me if self.mine else self.csm
        params: list[tuple[str, str | int]] = [
            (name, value)
            for name, value in (
                ("band", self.band),
                ("csm", csm),
                ("tier", self.tier),
                ("plan", self.plan),
                ("signal_type", self.signal_type),
                ("q", self.q),
            )
            if value
        ]
        return [*params, ("sort", self.sort), ("limit", page_size), ("offset", (self.page - 1) * page_size)]

    def link(self, **changes: object) -> str:
        """The list's URL with these filters, ``changes`` applied (a new filter or sort starts at page 1)."""
        changed = replace(self, **({"page": 1} | changes))  # type: ignore[arg-type]
        query = {k: v for k, v in vars(changed).items() if v not in (None, "", False) and not (k == "page" and v == 1)}
        if query.get("sort") == "band":
            query.pop("sort")
        return "/?" + urlencode({k: ("1" if v is True else v) for k, v in query.items()}) if query else "/"


def _choice(field: str, value: str | None, allowed: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise FilterRejected(field, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _text(field: str, value: str | None, limit: int) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise FilterRejected(field, f"at most {limit} characters")
    return value.strip()


def parse_filters(query: Mapping[str, str]) -> ListFilters:
    """Raises ``FilterRejected`` naming the first bad field (unknown fields too: a typo should not hide a filter)."""
    unknown = sorted(set(query) - KNOWN_FIELDS)
    if unknown:
        raise FilterRejected(unknown[0], f"unknown filter; known: {', '.join(sorted(KNOWN_FIELDS))}")
    page_text = query.get("page") or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
        raise FilterRejected("page", f"a page number from 1 to {MAX_PAGE}, not {page_text!r}")
    csm = _text("csm", query.get("csm"), 320)
    if csm is not None and "@" not in csm:
        raise FilterRejected("csm", f"a CSM's email address, not {csm!r}")
    return ListFilters(
        band=_choice("band", query.get("band"), [b.value for b in Band]),
        csm=csm,
        tier=_choice("tier", query.get("tier"), [t.value for t in TouchTier]),
        plan=_text("plan", query.get("plan"), 100),
        signal_type=_choice("signal_type", query.get("signal_type"), [s.value for s in SignalType]),
        q=_text("q", query.get("q"), 200),
        sort=_choice("sort", query.get("sort"), list(SORT_KEYS)) or "band",
        page=int(page_text),
        mine=_choice("mine", query.get("mine"), ["1", "0", "true", "false"]) in ("1", "true"),
    )


@dataclass(frozen=True)
class Paging:
    page: int
    pages: int
    total: int
    first: int  # 1-based position of the page's first row (0 when empty)
    last: int

    @classmethod
    def of(cls, page: int, total: int, page_size: int, shown: int) -> Paging:
        first = (page - 1) * page_size + 1 if shown else 0
        return cls(page, max(1, math.ceil(total / page_size)), total, first, first + shown - 1 if shown else 0)
