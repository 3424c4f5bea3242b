from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from services.alerter.links import PLACEHOLDER_SECRETS
from services.alerter.notice_mode import DEFAULT_MIN_RULE_LIFT, DEFAULT_NOTIFY_MAX_AGE, DeliveryMode
from services.alerter.routing import Addresses
from shared.key_auth import KeyAuthSettings
from shared.settings import CommonSettings


class AlerterSettings(CommonSettings, KeyAuthSettings):
    http_port: int = 8002
    routing_path: Path | None = Field(
        default=None, description="Routing rules YAML; the packaged routing.yaml if unset"
    )
    slack_webhook_url: str | None = Field(
        default=None, description="Webhook for any rule's slack name not listed below"
    )
    slack_webhooks: dict[str, str] = Field(default_factory=dict, description='JSON {"csm": url, "support": url, ...}')
    webhooks: dict[str, str] = Field(default_factory=dict, description="JSON name -> URL of signed JSON webhooks")
    webhook_secret: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    email_enabled: bool = True
    email_from: str = "churnwatch@localhost"
    support_email: str | None = None
    fallback_email: str | None = None
    console_alerts: bool = Field(default=False, description="Also print every alert to stdout (local demo)")
    digests_enabled: bool = Field(default=True, description="false: digest rules send one email per alert")
    digest_interval_seconds: float = Field(default=86400.0, gt=0)
    digest_offset_seconds: float = Field(default=8 * 3600.0, ge=0, description="digests go out at 08:00 UTC")
    repeat_interval_seconds: float = Field(default=4 * 3600.0, ge=0, description="0: never remind")
    clock_interval_seconds: float = Field(
        default=5.0, gt=0, description="how often the reminder/digest scheduler ticks (its old name is kept)"
    )
    group_wait_seconds: float = Field(
        default=0.5,
        ge=0,
        description="a new group of an account's notices waits this long for the rest of them: the scorer publishes"
        " one day close's signals together (one checkpoint, one outbox page), so half a second gathers them and keeps"
        " a lone signal's notice prompt",
    )
    group_interval_seconds: float = Field(
        default=300.0, ge=0, description="after a group went out, the account's next notices wait this long"
    )
    public_url: str | None = Field(default=None, description="Base URL of this API; enables ack/snooze links")
    link_secret: str | None = None
    link_ttl_seconds: float = Field(default=7 * 86400.0, gt=0)
    snooze_seconds: float = Field(default=4 * 3600.0, gt=0)
    account_url_template: str | None = Field(default=None, description="e.g. https://crm.example.com/a/{account_id}")
    alerter_api_token: str | None = Field(default=None, description="Bearer token for POST /v1/alerts/...")
    delivery_workers: int = Field(default=2, ge=1, le=32)
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_max_age_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="a retryable failure is given up only after max_attempts tries and this long since the row was"
        " queued: an outage of Slack or SMTP delays messages instead of killing them",
    )
    delivery_backoff_seconds: float = Field(default=1.0, gt=0)
    delivery_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    slack_min_interval_seconds: float = Field(
        default=1.0, ge=0, description="at most one send per this many seconds to one Slack webhook; 0: unpaced"
    )
    delivery_mode: DeliveryMode = Field(
        default=DeliveryMode.LIVE, description="shadow: run the whole alert logic, record every notice, send none"
    )
    notify_max_age_seconds: float = Field(
        default=DEFAULT_NOTIFY_MAX_AGE.total_seconds(),
        description="a signal whose occurred_at is older than now minus this is historic: recorded, never sent",
    )
    min_rule_lift: float = Field(
        default=DEFAULT_MIN_RULE_LIFT,
        description="a signal whose rule's backtested lift is below this is quiet: recorded, never sent; 0: off",
    )

    def addresses(self) -> Addresses:
        """What the routing rules' names resolve to: webhook URLs and team addresses."""
        return Addresses(
            slack_webhooks=self.slack_webhooks,
            default_slack_webhook=self.slack_webhook_url,
            webhooks=self.webhooks,
            support_email=self.support_email,
            fallback_email=self.fallback_email,
            email_enabled=self.email_enabled,
            digests_enabled=self.digests_enabled,
            console=self.console_alerts,
        )

    @field_validator("delivery_mode", mode="before")
    @classmethod
    def _known_delivery_mode(cls, value: object) -> object:
        modes = [m.value for m in DeliveryMode]
        given = value.strip().lower() if isinstance(value, str) else value
        if given not in modes:
            raise ValueError(f"CHURNWATCH_DELIVERY_MODE must be one of {', '.join(modes)}, not {value!r}")
        return given

    @field_validator("notify_max_age_seconds", mode="before")
    @classmethod
    def _positive_max_age(cls, value: object) -> float:
        seconds = _number(value)
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"CHURNWATCH_NOTIFY_MAX_AGE_SECONDS must be a number of seconds > 0, not {value!r}")
        return seconds

    @field_validator("min_rule_lift", mode="before")
    @classmethod
    def _known_lift_floor(cls, value: object) -> float:
        lift = _number(value)
        if not (math.isfinite(lift) and lift >= 0):
            raise ValueError(f"CHURNWATCH_MIN_RULE_LIFT must be a lift >= 0 (0 turns the floor off), not {value!r}")
        return lift

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> AlerterSettings:
        if self.public_url and (self.link_secret or "").strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("CHURNWATCH_PUBLIC_URL enables signed links: set CHURNWATCH_LINK_SECRET to a real secret")
        if self.public_url and len(self.link_secret or "") < 16:
            raise ValueError("CHURNWATCH_LINK_SECRET must be at least 16 characters")
        if self.webhooks and (self.webhook_secret or "").strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("CHURNWATCH_WEBHOOKS needs CHURNWATCH_WEBHOOK_SECRET to sign the requests")
        if self.alerter_api_token is not None and self.alerter_api_token.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("CHURNWATCH_ALERTER_API_TOKEN is a placeholder; set a real token or unset it")
        return self


def _number(value: object) -> float:
    """A setting's number, NaN when it is not one (so the validator's message names the variable)."""
    try:
        return float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return math.nan
