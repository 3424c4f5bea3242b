"""Segment-compatible HTTP API: /v1/batch, /v1/track, /v1/identify, /v1/group, /v1/page.

Backends instrumented with Segment or RudderStack SDKs switch by changing only the host; the write key is
a Churnwatch API key (HTTP Basic user name). A batch is all-or-nothing like the native API: an invalid
message refuses the whole request with 400 naming ``batch[i]``; calls with nothing to score are listed
as skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from services.ingest.account_store import known_profiles
from services.ingest.auth import Caller
from services.ingest.body import parse_json, read_body, refuse_nul
from services.ingest.errors import FieldError, IngestError, field_errors, unavailable
from services.ingest.metrics import count_rejected
from services.ingest.routes import (
    EngineDep,
    EventWriter,
    PublisherDep,
    SettingsDep,
    event_rules,
    publish_accounts_or_503,
    publish_events_or_503,
)
from services.ingest.segment import (
    SEGMENT_TYPES,
    SegmentRules,
    account_of,
    corrected_time,
    profile_from_traits,
    to_event,
)
from services.ingest.settings import IngestSettings
from services.ingest.validation import OUT_OF_RANGE, EventRules, checked_batch, event_time_problem
from shared.accounts import AccountProfile
from shared.api_keys import Scope
from shared.events import Event

segment_router = APIRouter(prefix="/v1", tags=["segment"])


@dataclass
class MappedBatch:
    events: list[Event] = field(default_factory=list)
    groups: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # (index, account, traits)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)


def map_batch(
    messages: list[Any], call: str | None, batch: dict[str, Any], settings: IngestSettings, now: datetime
) -> MappedBatch:
    rules = SegmentRules(tuple(settings.segment_account_paths), settings.segment_track_events)
    time_rules = event_rules(settings)
    out = MappedBatch()
    context = batch.get("context") if isinstance(batch.get("context"), dict) else {}
    for i, message in enumerate(messages):
        path = f"batch[{i}]"
        if not isinstance(message, dict):
            out.errors.append({"path": path, "type": "dict_type", "reason": "a message must be an object", "index": i})
            continue
        own_context = message.get("context") if isinstance(message.get("context"), dict) else {}
        message = {**message, "context": {**(context or {}), **(own_context or {})}}
        kind = call or message.get("type")
        if kind not in SEGMENT_TYPES:
            out.errors.append(
                {
                    "path": f"{path}.type",
                    "type": "literal_error",
                    "index": i,
                    "reason": f"type must be one of {', '.join(SEGMENT_TYPES)}",
                }
            )
            continue
        message_id = message.get("messageId")
        if kind == "group":
            account = message.get("groupId")
            if account in (None, ""):
                out.errors.append({"path": f"{path}.groupId", "type": "missing", "reason": "required", "index": i})
            else:
                traits = message.get("traits") if isinstance(message.get("traits"), dict) else {}
                out.groups.append((i, str(account), traits or {}))
            continue
        if kind not in ("track", "page"):
            out.skipped.append({"index": i, "messageId": message_id, "reason": f"{kind} calls carry no account event"})
            continue
        _map_account_event(out, i, message, kind, batch.get("sentAt"), rules, time_rules, now)
    return out


def _map_account_event(
    out: MappedBatch,
    i: int,
    message: dict[str, Any],
    kind: str,
    sent_at: Any,
    rules: SegmentRules,
    time_rules: EventRules,
    now: datetime,
) -> None:
    """A track or page call: an event for its account, or a skip when it names none, or the fields at fault."""
    path = f"batch[{i}]"
    account = account_of(message, rules.account_paths)
    if account is None:
        count_rejected("unknown", "no_account")
        reason = f"no account id at {' or '.join(rules.account_paths)}"
        out.skipped.append({"index": i, "messageId": message.get("messageId"), "reason": reason})
        return
    occurred = corrected_time(message, sent_at, now)
    try:
        event = to_event(message, kind, account_id=account, occurred_at=occurred, received_at=now, rules=rules)
    except ValidationError as exc:
        out.errors.extend({**e, "index": i} for e in field_errors(exc, f"{path}."))
        return
    problem = event_time_problem(event.occurred_at, now, time_rules)
    if problem and time_rules.time_policy == "reject":
        out.errors.append({"path": f"{path}.timestamp", "type": OUT_OF_RANGE, "reason": problem, "index": i})
        return
    out.events.append(event.model_copy(update={"flags": [OUT_OF_RANGE]}) if problem else event)


async def _profiles(mapped: MappedBatch, engine: Any, settings: IngestSettings) -> list[AccountProfile]:
    try:
        known = await known_profiles(engine, [account for _, account, _ in mapped.groups])
    except (SQLAlchemyError, OSError) as exc:
        raise unavailable("account", settings.unavailable_retry_after_seconds, "database_unavailable") from exc
    profiles: dict[str, AccountProfile] = {}
    for i, account, traits in mapped.groups:
        try:
            profile = profile_from_traits(account, traits, known.get(account))
        except ValidationError as exc:
            mapped.errors.extend({**e, "index": i} for e in field_errors(exc, f"batch[{i}].traits."))
            continue
        profiles[account] = profile
        known[account] = profile.model_dump(mode="json")
    return list(profiles.values())


async def _ingest(
    request: Request,
    call: str | None,
    publisher: Any,
    engine: Any,
    settings: IngestSettings,
    caller: Caller,
) -> dict[str, Any]:
    payload, messages = await _read_messages(request, call, settings)
    mapped = map_batch(messages, call, payload, settings, datetime.now(UTC))
    if mapped.groups and Scope.WRITE_ACCOUNTS not in caller.scopes:
        raise IngestError(403, "forbidden", "group calls need a key with the accounts:write scope")
    profiles = await _profiles(mapped, engine, settings) if mapped.groups else []
    if mapped.errors:
        first = mapped.errors[0]
        for e in mapped.events:
            count_rejected(e.kind, "batch_refused")
        raise IngestError(
            400,
            "invalid_message",
            f"invalid field {first['path']}: {first['reason']}; nothing was accepted",
            fields=mapped.errors,
            extra={"accepted": 0, "rejected_indexes": sorted({int(e["index"]) for e in mapped.errors})},
        )
    await publish_accounts_or_503(profiles, publisher, engine, settings)
    await publish_events_or_503(mapped.events, publisher, settings, caller.name)
    return {
        "success": True,
        "accepted": len(mapped.events),
        "accounts_updated": len(profiles),
        "skipped": mapped.skipped,
    }


async def _read_messages(
    request: Request, call: str | None, settings: IngestSettings
) -> tuple[dict[str, Any], list[Any]]:
    body = await read_body(request, settings.max_batch_bytes if call is None else settings.max_event_bytes)
    payload = parse_json(body)
    refuse_nul(payload, body)
    if not isinstance(payload, dict):
        raise IngestError(400, "invalid_request", "the body must be a JSON object")
    messages = payload.get("batch") if call is None else [payload]
    # Segment's contract answers 400 (not 422) to a malformed batch
    messages = checked_batch(messages, "batch", status=400, max_items=settings.max_batch_events)
    if call is None and len(body) > settings.max_event_bytes:
        _check_message_sizes(messages, settings.max_event_bytes)
    return payload, messages


def _check_message_sizes(messages: list[Any], limit: int) -> None:
    big = [i for i, m in enumerate(messages) if len(json.dumps(m, separators=(",", ":"))) > limit]
    if big:
        raise IngestError(
            413,
            "event_too_large",
            f"messages larger than {limit} bytes: nothing was accepted",
            fields=[
                {"path": f"batch[{i}]", "type": "too_large", "reason": f"larger than {limit} bytes", "index": i}
                for i in big
            ],
        )


def _segment_route(call: str | None) -> Any:
    async def route(
        request: Request, caller: EventWriter, publisher: PublisherDep, engine: EngineDep, settings: SettingsDep
    ) -> dict[str, Any]:
        return await _ingest(request, call, publisher, engine, settings, caller)

    route.__name__ = f"segment_{call or 'batch'}"
    return route


_MESSAGE = {"type": "object", "additionalProperties": True}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_BATCH = {"type": "object", "properties": {"batch": {"type": "array", "items": _MESSAGE}, "sentAt": {"type": "string"}}}
segment_router.post("/batch", summary="Segment/RudderStack batch", openapi_extra=_body(_BATCH))(_segment_route(None))
for _call in ("track", "identify", "group", "page"):
    segment_router.post(f"/{_call}", summary=f"Segment {_call} call", openapi_extra=_body(_MESSAGE))(
        _segment_route(_call)
    )
