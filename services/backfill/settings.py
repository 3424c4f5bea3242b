from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class BackfillSettings(CommonSettings):
    """``churnwatch backfill``'s knobs; the topic prefix and schema come from ``--sandbox`` when it is given."""

    # the same per-event limits ingest applies; the age limit is the --max-age-days option (history is old)
    max_event_bytes: int = Field(default=32 * 1024, ge=1024)
    max_event_future_seconds: int = Field(default=24 * 3600, ge=0)

    # producer batching: records wait up to linger_ms to fill a batch of up to backfill_batch_bytes per partition
    backfill_linger_ms: int = Field(default=50, ge=0)
    backfill_batch_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=1024 * 1024)
    # records handed to the producer and not yet acknowledged; past this the reader waits for the oldest
    backfill_max_in_flight: int = Field(default=50_000, ge=1)
    backfill_request_timeout_ms: int = Field(default=30_000, ge=1000)

    # processes validating JSON Lines beside the reader process (validating costs most of a run); 0: none
    backfill_read_workers: int = Field(default=2, ge=0, le=64)

    # external sort: events held in memory per sorted run (bounds memory at any input size), runs merged at once
    backfill_run_events: int = Field(default=200_000, ge=1)
    backfill_merge_fan_in: int = Field(default=64, ge=2)

    # a file whose first lines are all rejected is not in the schema: stop before anything is sent
    backfill_probe_lines: int = Field(default=50, ge=1)
