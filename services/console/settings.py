"""The console's settings: ``CHURNWATCH_CONSOLE_*`` for its own knobs, the common ones for the database."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator

from shared.settings import CommonSettings

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "session-secret"}


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"CHURNWATCH_CONSOLE_{name.upper()}", name)


class ConsoleSettings(CommonSettings):
    """``CHURNWATCH_CONSOLE_PORT`` (or ``CHURNWATCH_HTTP_PORT``, as the process runners set it) picks the port."""

    http_port: int = Field(
        default=8003, validation_alias=AliasChoices("CHURNWATCH_CONSOLE_PORT", "CHURNWATCH_HTTP_PORT", "http_port")
    )
    scorer_url: str = Field(default="http://127.0.0.1:8001", validation_alias=_env("scorer_url"))
    alerter_url: str = Field(default="http://127.0.0.1:8002", validation_alias=_env("alerter_url"))
    read_api_key: str | None = Field(
        default=None,
        validation_alias=_env("read_api_key"),
        description="an API key with the read scope, sent as Authorization: Bearer on reads to scorer and alerter",
    )
    alerter_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CHURNWATCH_ALERTER_API_TOKEN", "alerter_token"),
        description="the alerter's write token (CHURNWATCH_ALERTER_API_TOKEN), for ack / snooze / resolve",
    )
    session_secret: str = Field(
        default="", validation_alias=_env("session_secret"), description="signs the session cookie; required"
    )
    secure_cookies: bool = Field(
        default=False, validation_alias=_env("secure_cookies"), description="true behind HTTPS: cookie only over TLS"
    )
    session_max_age_seconds: int = Field(default=12 * 3600, gt=0, validation_alias=_env("session_max_age_seconds"))
    trust_proxy: bool = Field(
        default=False,
        validation_alias=_env("trust_proxy"),
        description="take the signed-in user from proxy_user_header (only behind a proxy that always sets it)",
    )
    proxy_user_header: str = Field(default="X-Forwarded-User", validation_alias=_env("proxy_user_header"))
    upstream_timeout_seconds: float = Field(default=5.0, gt=0, validation_alias=_env("upstream_timeout_seconds"))
    backtest_dir: Path | None = Field(
        default=None, validation_alias=_env("backtest_dir"), description="folder of backtest HTML reports"
    )
    page_size: int = Field(default=50, ge=1, le=500, validation_alias=_env("page_size"))

    @field_validator("session_secret")
    @classmethod
    def _real_secret(cls, value: str) -> str:
        if value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16:
            raise ValueError("CHURNWATCH_CONSOLE_SESSION_SECRET must be set to a random string of 16+ characters")
        return value
