"""Turning a decoded request body into events, pure: shape, per-event size, schema, event-time sanity.

A native batch is all-or-nothing: one bad event and none is accepted, and every bad one is named by its
path (``events[3].occurred_at``), so what was accepted is never in doubt.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from services.ingest.errors import EVENT_KINDS, FieldError, IngestError, field_errors
from shared.events import EVENT_ADAPTER, Event


@dataclass(frozen=True)
class EventRules:
    max_event_bytes: int
    max_batch_events: int
    max_future: timedelta
    max_age: timedelta
    time_policy: Literal["reject", "flag"]


OUT_OF_RANGE = "occurred_at_out_of_range"


def event_time_problem(occurred_at: datetime, now: datetime, rules: EventRules) -> str | None:
    if occurred_at > now + rules.max_future:
        return f"occurred_at is more than {rules.max_future} in the future"
    if occurred_at < now - rules.max_age:
        return f"occurred_at is more than {rules.max_age.days} days in the past"
    return None


def unwrap_batch(payload: Any, rules: EventRules) -> tuple[list[Any], str]:
    """One event or ``{"events": [...]}``: the raw items and the path prefix to name them by."""
    if not (isinstance(payload, dict) and "events" in payload):
        return [payload], ""
    raw = payload["events"]
    if not isinstance(raw, list) or not raw:
        raise IngestError(
            422,
            "invalid_batch",
            "events must be a non-empty list",
            fields=[{"path": "events", "reason": "must be a non-empty list", "type": "list_type"}],
        )
    if len(raw) > rules.max_batch_events:
        raise IngestError(413, "batch_too_large", f"at most {rules.max_batch_events} events per batch")
    return raw, "events"


def _item_path(prefix: str, i: int) -> str:
    return f"{prefix}[{i}]" if prefix else ""


def validate_item(item: Any, path: str, now: datetime, rules: EventRules, check_size: bool) -> Event | FieldError:
    """One raw event: an Event stamped with ``received_at``, or the first reason it is refused."""
    if check_size and len(json.dumps(item, separators=(",", ":"))) > rules.max_event_bytes:
        return {"path": path or "event", "type": "too_large", "reason": f"larger than {rules.max_event_bytes} bytes"}
    if isinstance(item, dict):
        item = {**item, "received_at": now}  # ingest's clock, whatever the client said
    try:
        event = EVENT_ADAPTER.validate_python(item)
    except ValidationError as exc:
        return field_errors(exc, f"{path}." if path else "")[0]
    problem = event_time_problem(event.occurred_at, now, rules)
    if problem is None:
        return event
    if rules.time_policy == "reject":
        return {"path": f"{path}.occurred_at".lstrip("."), "type": OUT_OF_RANGE, "reason": problem}
    return event.model_copy(update={"flags": [*(event.flags or []), OUT_OF_RANGE]})


def parse_events(payload: Any, now: datetime, rules: EventRules, body_bytes: int) -> list[Event]:
    raw, prefix = unwrap_batch(payload, rules)
    check_size = body_bytes > rules.max_event_bytes  # a body smaller than the limit cannot hold a larger event
    events: list[Event] = []
    errors: list[FieldError] = []
    rejected_kinds: Counter[str] = Counter()
    for i, item in enumerate(raw):
        result = validate_item(item, _item_path(prefix, i), now, rules, check_size)
        if isinstance(result, dict):
            errors.append({**result, "index": i})
            kind = item.get("kind") if isinstance(item, dict) else None
            rejected_kinds[f"{kind if kind in EVENT_KINDS else 'unknown'}|{result['type']}"] += 1
        else:
            events.append(result)
    if errors:
        first = errors[0]
        too_large = all(e["type"] == "too_large" for e in errors)
        raise InvalidEvents(
            413 if too_large else 422,
            "event_too_large" if too_large else "invalid_event",
            f"invalid field {first['path']}: {first['reason']}; nothing was accepted",
            fields=errors,
            extra={"accepted": 0, "rejected_indexes": sorted({int(e["index"]) for e in errors})},
            rejected_kinds=rejected_kinds,
        )
    return events


class InvalidEvents(IngestError):
    """A batch refused whole; ``rejected_kinds`` counts ``kind|reason`` for the metrics."""

    def __init__(self, *args: Any, rejected_kinds: Counter[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rejected_kinds = rejected_kinds
