from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.key_auth import KeyAuthSettings
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


KEEP_ALIVE_MARGIN_SECONDS = 5  # the client's timer and the request's own time


class IngestSettings(CommonSettings, KeyAuthSettings):
    """API keys (``auth_required``, ``key_cache_seconds``, ``auth_stale_grace_seconds``, ...): KeyAuthSettings."""

    http_port: int = 8000
    max_event_bytes: int = Field(default=32 * 1024, ge=1024)
    max_batch_bytes: int = Field(default=500 * 1024, ge=1024)
    max_batch_events: int = Field(default=2500, ge=1)
    produce_timeout_seconds: float = Field(default=10.0, gt=0)
    # a 503 tells the client to come back after this long
    unavailable_retry_after_seconds: int = Field(default=5, ge=1)

    # overload: requests past this many in flight get 503 + Retry-After before their body or key is read; the
    # Retry-After starts at shed_retry_after_seconds and grows with the overload, up to max_retry_after_seconds
    max_in_flight: int = Field(default=32, ge=1)  # the peak rate is reached at ~8; 32 leaves room, bounds latency
    shed_retry_after_seconds: int = Field(default=1, ge=1)
    # broker down: after a failed send, 503 at once until a metadata probe (every this many seconds) succeeds
    broker_probe_seconds: float = Field(default=1.0, gt=0)
    # Retry-After vs keep-alive: no Retry-After ingest sends exceeds max_retry_after_seconds, and an idle
    # connection is kept for http_keep_alive_seconds >= max_retry_after_seconds + KEEP_ALIVE_MARGIN_SECONDS, so a
    # client that waits exactly Retry-After never finds its connection closed (uvicorn's default, 5 s, did)
    max_retry_after_seconds: int = Field(default=10, ge=1)
    http_keep_alive_seconds: int = Field(default=20, ge=1)

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

    @model_validator(mode="after")
    def _retry_after_within_keep_alive(self) -> IngestSettings:
        for name in ("unavailable_retry_after_seconds", "shed_retry_after_seconds"):
            if getattr(self, name) > self.max_retry_after_seconds:
                raise ValueError(f"{name} ({getattr(self, name)}) exceeds max_retry_after_seconds")
        if self.http_keep_alive_seconds < self.max_retry_after_seconds + KEEP_ALIVE_MARGIN_SECONDS:
            raise ValueError(
                f"http_keep_alive_seconds ({self.http_keep_alive_seconds}) must be at least max_retry_after_seconds "
                f"+ {KEEP_ALIVE_MARGIN_SECONDS} ({self.max_retry_after_seconds + KEEP_ALIVE_MARGIN_SECONDS}), or a "
                "client honouring Retry-After meets a closed connection"
            )
        return self
