"""Segment's wire format to Churnwatch's events and account profiles, pure.

- ``messageId`` is the event id (what duplicates are recognised by).
- Event time is corrected for the sender's clock: timestamp = receivedAt - (sentAt - originalTimestamp).
- The account is found on a track/page call at the first configured path (``context.groupId`` by default);
  a group call's ``groupId`` names the account and its traits update the account's profile.
- Track event names map to ticket, feedback or lifecycle events by a configurable table; any other track
  (and a page view) is product usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.accounts import AccountProfile
from shared.events import EVENT_ADAPTER, Event

SEGMENT_TYPES = ("track", "identify", "group", "page", "screen", "alias")


@dataclass(frozen=True)
class Skipped:
    """A valid Segment call that carries nothing to score (identify, alias, screen, no account)."""

    reason: str


@dataclass(frozen=True)
class SegmentRules:
    account_paths: tuple[str, ...]
    track_events: dict[str, dict[str, str]]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def corrected_time(message: dict[str, Any], batch_sent_at: Any, received_at: datetime) -> datetime:
    """When it happened by ingest's clock: the sender's clock skew (sentAt vs receivedAt) taken out."""
    original = parse_time(message.get("timestamp")) or parse_time(message.get("originalTimestamp"))
    sent_at = parse_time(message.get("sentAt")) or parse_time(batch_sent_at)
    if original is None:
        return received_at
    if sent_at is None:
        return original
    try:
        return received_at - (sent_at - original)
    except OverflowError:  # absurd clocks: keep the sender's time, the event-time check judges it
        return original


def lookup(message: dict[str, Any], dotted: str) -> Any:
    node: Any = message
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def account_of(message: dict[str, Any], paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = lookup(message, path)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _first(props: dict[str, Any], *names: str) -> Any:
    return next((props[n] for n in names if props.get(n) is not None), None)


def _kind_fields(kind: str, action: str | None, name: str, props: dict[str, Any]) -> dict[str, Any]:
    if kind == "ticket":
        priority = _first(props, "priority")
        return {
            "action": action,
            "ticket_id": str(_first(props, "ticket_id", "ticketId", "id") or ""),
            "priority": priority.lower() if isinstance(priority, str) else "normal",
            "csat": _first(props, "csat", "CSAT"),
        }
    if kind == "feedback":
        return {
            "nps": _first(props, "nps", "NPS", "score"),
            "csat": _first(props, "csat"),
            "comment": props.get("comment"),
        }
    if kind == "lifecycle":
        return {"action": action, "milestone": _first(props, "milestone"), "plan": _first(props, "plan")}
    return {
        "action": action or "feature_used",
        "feature": _first(props, "feature") or name,
        "quantity": _first(props, "quantity", "count", "calls") or 1,
        "seats": _first(props, "seats"),
    }


def library_name(message: dict[str, Any]) -> str | None:
    """The SDK that sent the call (``context.library.name``, e.g. analytics-python): the event's source, so that
    an SDK broken in a release shows as a silent source rather than as quiet customers."""
    name = lookup(message, "context.library.name")
    if not isinstance(name, str):
        return None
    return name.strip()[:100] or None


def to_event(
    message: dict[str, Any],
    call: str,
    *,
    account_id: str,
    occurred_at: datetime,
    received_at: datetime,
    rules: SegmentRules,
) -> Event:
    """Raises pydantic.ValidationError naming the field when the mapped event is not valid."""
    props = message.get("properties") if isinstance(message.get("properties"), dict) else {}
    assert isinstance(props, dict)
    if call == "page":
        name = str(message.get("name") or props.get("path") or "page")
        mapping: dict[str, str] = {"kind": "usage", "action": "feature_used"}
        name = f"page:{name}"
    else:
        name = str(message.get("event") or "")
        mapping = rules.track_events.get(name, {"kind": "usage", "action": "feature_used"})
    kind = mapping.get("kind", "usage")
    fields = {k: v for k, v in _kind_fields(kind, mapping.get("action"), name, props).items() if v is not None}
    user = message.get("userId") or message.get("anonymousId")
    raw = {
        "kind": kind,
        "event_id": message.get("messageId"),
        "account_id": account_id,
        "user_id": str(user) if user not in (None, "") else None,
        "occurred_at": occurred_at,
        "received_at": received_at,
        "source": library_name(message),
        "properties": {"segment_event": name, **props},
        **fields,
    }
    return EVENT_ADAPTER.validate_python({k: v for k, v in raw.items() if v is not None})


_CONTACT_TRAITS = {"csm": "csm", "support_route": "support"}


def _contact(traits: dict[str, Any], field: str) -> dict[str, Any] | None:
    nested = traits.get(field)
    if isinstance(nested, dict):
        return nested
    stem = _CONTACT_TRAITS[field]
    found = {k: traits.get(f"{stem}_{k}") for k in ("name", "email", "slack")}
    return {k: v for k, v in found.items() if v is not None} or None


def _date(value: Any) -> Any:
    parsed = parse_time(value) if isinstance(value, str) and "T" in value else None
    return parsed.date().isoformat() if parsed else value


def profile_from_traits(account_id: str, traits: dict[str, Any], known: dict[str, Any] | None) -> AccountProfile:
    """A group call's traits laid over what is known of the account; raises pydantic.ValidationError."""
    mapped: dict[str, Any] = {
        "name": traits.get("name"),
        "plan": traits.get("plan"),
        "arr": _first(traits, "arr", "ARR"),
        "mrr": _first(traits, "mrr", "MRR"),
        "seats_purchased": _first(traits, "seats_purchased", "seats"),
        "csm": _contact(traits, "csm"),
        "support_route": _contact(traits, "support_route"),
        "touch_tier": traits.get("touch_tier"),
        "lifecycle_stage": traits.get("lifecycle_stage"),
        "renewal_date": _date(traits.get("renewal_date")),
        "created_date": _date(_first(traits, "created_date", "createdAt", "created_at")),
    }
    merged = {**(known or {"name": account_id}), **{k: v for k, v in mapped.items() if v is not None}}
    merged["account_id"] = account_id
    return AccountProfile.model_validate(merged)
