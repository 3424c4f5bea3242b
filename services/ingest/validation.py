"""Turning a request body into events, pure: shape, schema, event-time sanity, per-event size.

A native batch is all-or-nothing: one bad event and none is accepted, and every bad one is named by its
path (``events[3].occurred_at``), so what was accepted is never in doubt.

The usual body (every event fine) is validated in one pass over its bytes (``validate_body``); anything else
falls back to ``parse_events``, which decides and names every fault. The one pass accepts only what
``parse_events`` would accept, so the fallback alone defines the outcome of a doubtful body.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from services.ingest.body import parse_json, refuse_nul
from services.ingest.errors import EVENT_KINDS, FieldError, IngestError, field_errors
from shared.events import EVENT_ADAPTER, Event


@dataclass(frozen=True)
class EventRules:
    max_event_bytes: int
    max_batch_events: int
    max_future: timedelta
    max_age: timedelta
    time_policy: Literal["reject", "flag"]


@dataclass(frozen=True)
class ValidEvents:
    """Accepted events and each one's bytes as written to Kafka, which carry ingest's ``received_at`` (the
    events themselves may still hold the client's, as the one pass leaves them unstamped)."""

    events: list[Event]
    values: list[bytes]


OUT_OF_RANGE = "occurred_at_out_of_range"


class _EventBatch(BaseModel):
    events: list[Event]  # other top-level keys are ignored, as unwrap_batch ignores them


_BODY_ADAPTER: TypeAdapter[_EventBatch | Event] = TypeAdapter(
    Annotated[_EventBatch | Event, Field(union_mode="left_to_right")]
)
_RECEIVED_AT = TypeAdapter(AwareDatetime)
_STAMPED_FIELD: set[str] = {"received_at"}  # left out of the dump, spliced in by encode_received


def received_stamp(now: datetime) -> bytes:
    return b'{"received_at":' + _RECEIVED_AT.dump_json(now) + b","


def encode_received(event: Event, stamp: bytes) -> bytes:
    """The event as written to Kafka, with ingest's ``received_at`` (``stamp``) spliced in: the same JSON as
    ``encode_event(stamp_received(event, now))``, without copying the model. shared.events.decode_event reads it."""
    # the model's own serializer, as model_dump_json uses it, but straight to bytes
    return stamp + event.__pydantic_serializer__.to_json(event, exclude=_STAMPED_FIELD, exclude_none=True)[1:]


def event_time_problem(occurred_at: datetime, now: datetime, rules: EventRules) -> str | None:
    if occurred_at > now + rules.max_future:
        return f"occurred_at is more than {rules.max_future} in the future"
    if occurred_at < now - rules.max_age:
        return f"occurred_at is more than {rules.max_age.days} days in the past"
    return None


def validate_body(body: bytes, now: datetime, rules: EventRules) -> ValidEvents:
    """A native request body: its events, or an IngestError (400, 413 or 422) naming every fault."""
    if b"\\u0000" not in body:  # a NUL can only come as this escape; such a body takes the naming path
        valid = _validate_usual_body(body, now, rules)
        if valid is not None:
            return valid
    payload = parse_json(body)
    refuse_nul(payload, body)
    events = parse_events(payload, now, rules)
    stamp = received_stamp(now)
    return ValidEvents(events, [encode_received(e, stamp) for e in events])


def _validate_usual_body(body: bytes, now: datetime, rules: EventRules) -> ValidEvents | None:
    """One pass of pydantic over the bytes: the events when every one is plainly fine, else None."""
    try:
        parsed = _BODY_ADAPTER.validate_json(body)
    except ValidationError:
        return None
    events = parsed.events if isinstance(parsed, _EventBatch) else [parsed]
    if not events or len(events) > rules.max_batch_events:
        return None
    earliest, latest = now - rules.max_age, now + rules.max_future
    if not all(earliest <= e.occurred_at <= latest for e in events):
        return None  # rejected or flagged: parse_events says which
    stamp = received_stamp(now)
    try:
        values = [encode_received(e, stamp) for e in events]
    except PydanticSerializationError:
        return None
    if any(len(v) > rules.max_event_bytes for v in values):
        return None
    return ValidEvents(events, values)


def checked_batch(items: Any, field: str, *, status: int, max_items: int) -> list[Any]:
    """``items`` if it is a non-empty list of at most ``max_items``; else the 4xx naming ``field``."""
    if not isinstance(items, list) or not items:
        raise IngestError(
            status,
            "invalid_batch",
            f"{field} must be a non-empty list",
            fields=[{"path": field, "reason": "must be a non-empty list", "type": "list_type"}],
        )
    if len(items) > max_items:
        raise IngestError(413, "batch_too_large", f"at most {max_items} items in {field}")
    return items


def unwrap_batch(payload: Any, rules: EventRules) -> tuple[list[Any], str]:
    """One event or ``{"events": [...]}``: the raw items and the path prefix to name them by."""
    if not (isinstance(payload, dict) and "events" in payload):
        return [payload], ""
    return checked_batch(payload["events"], "events", status=422, max_items=rules.max_batch_events), "events"


def _item_path(prefix: str, i: int) -> str:
    return f"{prefix}[{i}]" if prefix else ""


def _size_problem(event: Event, path: str, now: datetime, rules: EventRules) -> FieldError | None:
    """The per-event limit applies to the event as written to Kafka, ``received_at`` included."""
    try:
        size = len(encode_received(event, received_stamp(now)))
    except PydanticSerializationError:  # e.g. a lone surrogate (\ud800) that UTF-8 cannot carry
        return {"path": path or "event", "type": "invalid_character", "reason": "not encodable as UTF-8"}
    if size > rules.max_event_bytes:
        return {"path": path or "event", "type": "too_large", "reason": f"larger than {rules.max_event_bytes} bytes"}
    return None


def validate_item(item: Any, path: str, now: datetime, rules: EventRules) -> Event | FieldError:
    """One raw event: an Event stamped with ``received_at``, or the first reason it is refused."""
    if isinstance(item, dict):
        item = {**item, "received_at": now}  # ingest's clock, whatever the client said
    try:
        event = EVENT_ADAPTER.validate_python(item)
    except ValidationError as exc:
        return field_errors(exc, f"{path}." if path else "")[0]
    problem = event_time_problem(event.occurred_at, now, rules)
    if problem is not None and rules.time_policy == "reject":
        return {"path": f"{path}.occurred_at".lstrip("."), "type": OUT_OF_RANGE, "reason": problem}
    if problem is not None:
        event = event.model_copy(update={"flags": [*(event.flags or []), OUT_OF_RANGE]})
    return _size_problem(event, path, now, rules) or event


def parse_events(payload: Any, now: datetime, rules: EventRules) -> list[Event]:
    raw, prefix = unwrap_batch(payload, rules)
    events: list[Event] = []
    errors: list[FieldError] = []
    rejected_kinds: Counter[str] = Counter()
    for i, item in enumerate(raw):
        result = validate_item(item, _item_path(prefix, i), now, rules)
        if isinstance(result, dict):
            errors.append({**result, "index": i})
            kind = item.get("kind") if isinstance(item, dict) else None
            rejected_kinds[f"{kind if kind in EVENT_KINDS else 'unknown'}|{result['type']}"] += 1
        else:
            events.append(result)
    if errors:
        raise _refused(errors, rejected_kinds)
    return events


def _refused(errors: list[FieldError], rejected_kinds: Counter[str]) -> InvalidEvents:
    first = errors[0]
    too_large = all(e["type"] == "too_large" for e in errors)
    return InvalidEvents(
        413 if too_large else 422,
        "event_too_large" if too_large else "invalid_event",
        f"invalid field {first['path']}: {first['reason']}; nothing was accepted",
        fields=errors,
        extra={"accepted": 0, "rejected_indexes": sorted({int(e["index"]) for e in errors})},
        rejected_kinds=rejected_kinds,
    )


class InvalidEvents(IngestError):
    """A batch refused whole; ``rejected_kinds`` counts ``kind|reason`` for the metrics."""

    def __init__(self, *args: Any, rejected_kinds: Counter[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rejected_kinds = rejected_kinds
