"""Ingest's native HTTP API: events and account metadata in, validated, onto Kafka."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.account_store import known_profile, remember_profiles
from services.ingest.auth import Caller, requires
from services.ingest.body import read_body, refuse_nul
from services.ingest.errors import IngestError, field_errors, unavailable
from services.ingest.metrics import BATCH_SIZE, count_accepted, count_rejected, record_senders
from services.ingest.publisher import EventPublisher, KafkaUnavailable
from services.ingest.settings import IngestSettings
from services.ingest.validation import EventRules, InvalidEvents, validate_body
from shared.accounts import AccountProfile, AccountProfileIn
from shared.api_keys import Scope
from shared.events import EVENT_ADAPTER, Event, event_json_schema

router = APIRouter(prefix="/v1")


def get_publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


def get_settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


PublisherDep = Annotated[EventPublisher, Depends(get_publisher)]
SettingsDep = Annotated[IngestSettings, Depends(get_settings)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
EventWriter = Annotated[Caller, Depends(requires(Scope.WRITE_EVENTS))]
AccountWriter = Annotated[Caller, Depends(requires(Scope.WRITE_ACCOUNTS))]
Reader = Annotated[Caller, Depends(requires(Scope.READ))]

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


def event_rules(settings: IngestSettings) -> EventRules:
    return EventRules(
        max_event_bytes=settings.max_event_bytes,
        max_batch_events=settings.max_batch_events,
        max_future=timedelta(seconds=settings.max_event_future_seconds),
        max_age=timedelta(days=settings.max_event_age_days),
        time_policy=settings.event_time_policy,
    )


async def publish_events_or_503(
    events: Sequence[Event],
    publisher: EventPublisher,
    settings: IngestSettings,
    sender: str,
    values: Sequence[bytes] | None = None,
) -> None:
    """``sender``: the caller's name (``key:<prefix>``), recorded per source with the time of its last event."""
    BATCH_SIZE.observe(len(events))
    try:
        await publisher.publish_events(events, values)
    except KafkaUnavailable as exc:
        for kind, n in Counter(e.kind for e in events).items():
            count_rejected(kind, "kafka_unavailable", n)
        raise unavailable("events", settings.unavailable_retry_after_seconds) from exc
    for kind, n in Counter(e.kind for e in events).items():
        count_accepted(kind, n)
    record_senders(sender, (e.source for e in events))


async def publish_accounts_or_503(
    profiles: Sequence[AccountProfile], publisher: EventPublisher, engine: AsyncEngine, settings: IngestSettings
) -> None:
    try:
        await publisher.publish_accounts(profiles)
        await remember_profiles(engine, profiles)  # only after Kafka acknowledged; PUT is safe to retry
    except KafkaUnavailable as exc:
        raise unavailable("account", settings.unavailable_retry_after_seconds) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise unavailable("account", settings.unavailable_retry_after_seconds, "database_unavailable") from exc


@router.post("/events", status_code=202, openapi_extra=_EVENTS_BODY, summary="Send one event or a batch")
async def post_events(
    request: Request, caller: EventWriter, publisher: PublisherDep, settings: SettingsDep
) -> dict[str, Any]:
    body = await read_body(request, settings.max_batch_bytes)
    try:
        valid = validate_body(body, datetime.now(UTC), event_rules(settings))
    except InvalidEvents as exc:
        for kind_reason, n in exc.rejected_kinds.items():
            kind, _sep, reason = kind_reason.partition("|")
            count_rejected(kind, reason, n)
        raise
    await publish_events_or_503(valid.events, publisher, settings, caller.name, valid.values)
    return {"accepted": len(valid.events), "event_ids": [e.event_id for e in valid.events]}


@router.put("/accounts/{account_id}", status_code=202, summary="Create or replace an account's metadata")
async def put_account(
    account_id: str,
    body: AccountProfileIn,
    _: AccountWriter,
    publisher: PublisherDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    refuse_nul({"account_id": account_id, **body.model_dump(mode="json")})
    try:
        profile = body.with_id(account_id)
    except ValidationError as exc:
        raise IngestError(422, "invalid_account", "invalid account id", fields=field_errors(exc)) from exc
    await publish_accounts_or_503([profile], publisher, engine, settings)
    return {"accepted": True, "account_id": account_id}


@router.get("/accounts/{account_id}", summary="The account metadata ingest has published")
async def get_account(account_id: str, _: Reader, engine: EngineDep, settings: SettingsDep) -> dict[str, Any]:
    refuse_nul({"account_id": account_id})
    try:
        found = await known_profile(engine, account_id)
    except (SQLAlchemyError, OSError) as exc:
        raise unavailable("account", settings.unavailable_retry_after_seconds, "database_unavailable") from exc
    if found is None:
        raise IngestError(404, "account_not_found", f"no metadata has been published for account {account_id!r}")
    profile, updated_at = found
    return {**profile, "updated_at": updated_at.isoformat()}


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
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description": "write key as user name (Segment)"},
            }
            schema["security"] = [{"bearer": []}, {"basic": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
