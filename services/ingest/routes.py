"""Ingest's HTTP API: events and account metadata in, validated, onto Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from services.ingest.errors import IngestError, field_errors
from services.ingest.publisher import EventPublisher, KafkaUnavailable
from services.ingest.settings import IngestSettings
from shared.accounts import AccountProfileIn
from shared.events import EVENT_ADAPTER, Event, event_json_schema, stamp_received

EVENTS = Counter("churnwatch_ingest_events_total", "Events by outcome", ["kind", "outcome"])
BATCH_SIZE = Histogram("churnwatch_ingest_batch_size", "Events per request", buckets=(1, 5, 20, 100, 500, 2500))

router = APIRouter(prefix="/v1")


def get_publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


def get_settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]
SettingsDep = Annotated[IngestSettings, Depends(get_settings)]

_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},  # registered by install_event_schema
                        {
                            "type": "object",
                            "required": ["events"],
                            "properties": {
                                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                            },
                        },
                    ]
                }
            }
        },
    }
}


async def read_json(request: Request, limit: int) -> Any:
    """Reads the body, refusing it before parsing once it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise IngestError(413, "payload_too_large", f"body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise IngestError(413, "payload_too_large", f"body is larger than {limit} bytes")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc


def parse_events(payload: Any, settings: IngestSettings) -> list[Event]:
    """One event or ``{"events": [...]}``; every event must be valid or none is accepted."""
    if isinstance(payload, dict) and "events" in payload:
        raw, prefix = payload["events"], "events"
        if not isinstance(raw, list) or not raw:
            raise IngestError(
                422,
                "invalid_batch",
                "events must be a non-empty list",
                fields=[{"path": "events", "reason": "must be a non-empty list", "type": "list_type"}],
            )
        if len(raw) > settings.max_batch_events:
            raise IngestError(413, "batch_too_large", f"at most {settings.max_batch_events} events per batch")
    else:
        raw, prefix = [payload], ""
    events: list[Event] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if len(json.dumps(item)) > settings.max_event_bytes:
            errors.append(
                {
                    "path": f"{prefix}[{i}]" if prefix else "event",
                    "type": "too_large",
                    "reason": f"event is larger than {settings.max_event_bytes} bytes",
                }
            )
            continue
        try:
            events.append(EVENT_ADAPTER.validate_python(item))
        except ValidationError as exc:
            kind = item.get("kind", "unknown") if isinstance(item, dict) else "unknown"
            EVENTS.labels(str(kind)[:20], "invalid").inc()
            errors.extend(field_errors(exc, f"{prefix}[{i}]." if prefix else ""))
    if errors:
        raise IngestError(
            422, "invalid_event", f"invalid field {errors[0]['path']}: {errors[0]['reason']}", fields=errors
        )
    return events


@router.post("/events", status_code=202, openapi_extra=_EVENTS_BODY, summary="Send one event or a batch")
async def post_events(request: Request, publisher: PublisherDep, settings: SettingsDep) -> dict[str, Any]:
    payload = await read_json(request, settings.max_batch_bytes)
    now = datetime.now(UTC)
    events = [stamp_received(e, now) for e in parse_events(payload, settings)]
    BATCH_SIZE.observe(len(events))
    try:
        await publisher.publish_events(events)
    except KafkaUnavailable as exc:
        for e in events:
            EVENTS.labels(e.kind, "unavailable").inc()
        raise IngestError(
            503,
            "kafka_unavailable",
            "events could not be stored; retry the whole request",
            headers={"Retry-After": "5"},
        ) from exc
    for e in events:
        EVENTS.labels(e.kind, "accepted").inc()
    return {"accepted": len(events), "event_ids": [e.event_id for e in events]}


@router.put("/accounts/{account_id}", status_code=202, summary="Create or replace an account's metadata")
async def put_account(account_id: str, body: AccountProfileIn, publisher: PublisherDep) -> dict[str, Any]:
    try:
        profile = body.with_id(account_id)
    except ValidationError as exc:
        raise IngestError(422, "invalid_account", "invalid account id", fields=field_errors(exc)) from exc
    try:
        await publisher.publish_account(profile)
    except KafkaUnavailable as exc:
        raise IngestError(
            503, "kafka_unavailable", "account could not be stored; retry", headers={"Retry-After": "5"}
        ) from exc
    return {"accepted": True, "account_id": account_id}


@router.get("/schema", summary="The event schema as JSON Schema")
async def get_schema() -> dict[str, Any]:
    return event_json_schema()


def install_event_schema(app: FastAPI) -> None:
    """Publish the event models in the OpenAPI components, so /docs shows the real request body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            event = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(event.pop("$defs", {}))
            components["Event"] = event
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
