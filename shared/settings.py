"""Settings shared by every service. Each service subclasses ``CommonSettings`` once; every field can be set
from an environment variable ``CHURNWATCH_<FIELD>``; the defaults run against the local stack."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class Topics:
    events: str
    accounts: str
    signals: str
    dead_letter: str


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHURNWATCH_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field(default="churnwatch", pattern=r"^[A-Za-z0-9._-]+$")
    events_partitions: int = Field(default=6, ge=1)
    database_url: str = "postgresql+asyncpg://churnwatch:churnwatch@127.0.0.1:5432/churnwatch?ssl=disable"
    database_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]*$")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"

    @property
    def topics(self) -> Topics:
        p = self.topic_prefix
        return Topics(
            events=f"{p}.events", accounts=f"{p}.accounts", signals=f"{p}.signals", dead_letter=f"{p}.deadletter"
        )
