"""The one event schema: what product backends send, what ingest validates and what the scorer decodes.

Every event travels in a versioned envelope (``schema_version``) and is keyed in Kafka by ``account_id``.
``event_id`` is chosen by the client and is what duplicates are recognised by.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION: Literal[1] = 1

# Event time is kept in UTC whatever offset the client sent: an event lands in the bucket of its UTC day, and
# the same instant always reads the same.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda at: at.astimezone(UTC))]
EventId = Annotated[str, Field(min_length=1, max_length=100, description="Client-chosen id, used for dedup")]
AccountId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")]


class UsageAction(StrEnum):
    LOGIN = "login"
    FEATURE_USED = "feature_used"
    SEATS_CHANGED = "seats_changed"
    API_CALLS = "api_calls"


class TicketAction(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class LifecycleAction(StrEnum):
    SIGNED_UP = "signed_up"
    ONBOARDING_MILESTONE = "onboarding_milestone"
    PLAN_CHANGED = "plan_changed"
    RENEWED = "renewed"
    CHURNED = "churned"


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: EventId
    account_id: AccountId
    user_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    occurred_at: UtcDatetime = Field(description="Event time: when it happened in the product (kept in UTC)")
    received_at: UtcDatetime | None = Field(
        default=None, description="Set by ingest when it accepted the event; clients leave it out"
    )
    source: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="Which integration sent it (a product backend, an SDK, a connector): a source that goes silent"
        " is told apart from customers going quiet. Segment calls get the SDK's context.library.name",
    )
    properties: dict[str, Any] = Field(default_factory=dict)
    flags: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=10, description="Set by ingest, e.g. occurred_at_out_of_range; clients leave it out"
    )


class UsageEvent(_EventBase):
    kind: Literal["usage"]
    action: UsageAction
    feature: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    quantity: Annotated[float, Field(ge=0, le=1e9)] = 1.0
    seats: Annotated[int, Field(ge=0)] | None = Field(default=None, description="For seats_changed")


class TicketEvent(_EventBase):
    kind: Literal["ticket"]
    action: TicketAction
    ticket_id: Annotated[str, Field(min_length=1, max_length=200)]
    priority: TicketPriority = TicketPriority.NORMAL
    csat: Annotated[int, Field(ge=1, le=5)] | None = Field(default=None, description="CSAT 1-5, on resolution")


class FeedbackEvent(_EventBase):
    kind: Literal["feedback"]
    nps: Annotated[int, Field(ge=0, le=10)] | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: Annotated[str, Field(max_length=5000)] | None = None


class LifecycleEvent(_EventBase):
    kind: Literal["lifecycle"]
    action: LifecycleAction
    milestone: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    plan: Annotated[str, Field(min_length=1, max_length=200)] | None = None


Event = Annotated[
    UsageEvent | TicketEvent | FeedbackEvent | LifecycleEvent,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def decode_event(raw: bytes) -> Event:
    """Decode one Kafka message value; raises pydantic.ValidationError on a malformed one."""
    return EVENT_ADAPTER.validate_json(raw)


def encode_event(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def event_json_schema() -> dict[str, Any]:
    return EVENT_ADAPTER.json_schema()


def stamp_received(event: Event, received_at: datetime) -> Event:
    return event.model_copy(update={"received_at": received_at})
