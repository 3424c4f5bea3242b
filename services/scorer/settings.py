from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class ScorerSettings(CommonSettings):
    http_port: int = 8001
    max_batch: int = Field(default=2000, ge=1)
    current_window_days: int = Field(default=7, ge=1)
    baseline_window_days: int = Field(default=28, ge=1)
    horizon_days: int = Field(default=90, ge=7)
