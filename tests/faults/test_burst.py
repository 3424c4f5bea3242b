"""Scenario 6: a burst of 10x the sustained rate at ingest. Every answer is 2xx, or 429/503 with Retry-After;
no other 5xx, no request left without an answer; the peak RSS of each service is reported and bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import Scenario
from tests.support.load import steady_logins

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RSS_BOUND_MB = 600.0  # per service; a leak or an unbounded queue shows as growth far beyond this


async def test_burst_of_ten_times_the_sustained_rate(scenario: Scenario) -> None:
    scale = scenario.scale
    await scenario.start()
    load = scenario.start_load(steady_logins("steady", accounts=200), max_in_flight=512, timeout=60.0)
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    before = dict(load.figures.answers)
    load.rate = scale.rate * 10
    began = time.monotonic()
    await asyncio.sleep(scale.burst_seconds)  # the burst's length
    load.rate = scale.rate
    await scenario.recovered(time.monotonic())
    scenario.notes["burst_answers"] = {str(k): n - before.get(k, 0) for k, n in load.figures.answers.items()}
    scenario.notes["burst_offered_events_per_s"] = scale.rate * 10
    scenario.notes["answer_latency"] = load.figures.latency_quantiles()
    scenario.notes["seconds"] = round(time.monotonic() - began, 1)
    row = await scenario.finish()
    assert not load.figures.unexpected_5xx(), f"5xx other than 503: {load.figures.unexpected_5xx()}"
    assert not load.figures.no_answer, f"requests without an answer: {dict(load.figures.no_answer)}"
    assert load.figures.missing_retry_after == 0
    assert all(mb < RSS_BOUND_MB for mb in row["peak_rss_mb"].values()), row["peak_rss_mb"]
    assert not row["violations"], row["violations"]
