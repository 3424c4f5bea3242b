from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    http_port: int = 8000
    max_event_bytes: int = Field(default=32 * 1024, ge=1024)
    max_batch_bytes: int = Field(default=500 * 1024, ge=1024)
    max_batch_events: int = Field(default=2500, ge=1)
    produce_timeout_seconds: float = Field(default=10.0, gt=0)
