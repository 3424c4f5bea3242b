from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class AlerterSettings(CommonSettings):
    http_port: int = 8002
    slack_webhook_url: str | None = None
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
    delivery_max_attempts: int = Field(default=8, ge=1)
    delivery_backoff_seconds: float = Field(default=1.0, gt=0)
    delivery_backoff_cap_seconds: float = Field(default=300.0, gt=0)
