from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.settings import CommonSettings

# Segment track event names that are tickets, feedback or lifecycle events rather than product usage.
DEFAULT_TRACK_EVENTS: dict[str, dict[str, str]] = {
    "Ticket Opened": {"kind": "ticket", "action": "opened"},
    "Ticket Updated": {"kind": "ticket", "action": "updated"},
    "Ticket Escalated": {"kind": "ticket", "action": "escalated"},
    "Ticket Resolved": {"kind": "ticket", "action": "resolved"},
    "Ticket Reopened": {"kind": "ticket", "action": "reopened"},
    "NPS Submitted": {"kind": "feedback"},
    "CSAT Submitted": {"kind": "feedback"},
    "Feedback Submitted": {"kind": "feedback"},
    "Signed Up": {"kind": "lifecycle", "action": "signed_up"},
    "Onboarding Milestone Reached": {"kind": "lifecycle", "action": "onboarding_milestone"},
    "Plan Changed": {"kind": "lifecycle", "action": "plan_changed"},
    "Subscription Renewed": {"kind": "lifecycle", "action": "renewed"},
    "Account Churned": {"kind": "lifecycle", "action": "churned"},
    "Signed In": {"kind": "usage", "action": "login"},
    "Logged In": {"kind": "usage", "action": "login"},
    "API Calls": {"kind": "usage", "action": "api_calls"},
}


class IngestSettings(CommonSettings):
    http_port: int = 8000
    max_event_bytes: int = Field(default=32 * 1024, ge=1024)
    max_batch_bytes: int = Field(default=500 * 1024, ge=1024)
    max_batch_events: int = Field(default=2500, ge=1)
    produce_timeout_seconds: float = Field(default=10.0, gt=0)
    # a 503 tells the client to come back after this long
    unavailable_retry_after_seconds: int = Field(default=5, ge=1)

    # API keys: off only for a local sandbox; production keeps it on
    auth_required: bool = True
    key_cache_seconds: float = Field(default=10.0, ge=0, description="how long a revoked key may still work")

    # per-key token bucket, in requests
    rate_limit_per_second: float = Field(default=100.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)

    # event time sanity: how far from now occurred_at may be, and what to do beyond that
    max_event_future_seconds: int = Field(default=24 * 3600, ge=0)
    max_event_age_days: int = Field(default=365, ge=1)
    event_time_policy: Literal["reject", "flag"] = "reject"

    # Segment-compatible API: where the account id is on a track/page/identify call (first found wins)
    segment_account_paths: list[str] = Field(default_factory=lambda: ["context.groupId", "properties.groupId"])
    segment_track_events: dict[str, dict[str, str]] = Field(default_factory=lambda: dict(DEFAULT_TRACK_EVENTS))
