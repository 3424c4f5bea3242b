"""Scenario 4: Slack answering 500, then 429 with Retry-After, and the SMTP server down, for a while: deliveries
back off, nothing is dropped (no dead row), nothing is sent twice, and the outbox drains afterwards."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.harness import Scenario
from tests.support.load import steady_logins
from tests.support.slack_server import ScriptedAnswer

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_slack_500_then_429_and_smtp_down(scenario: Scenario) -> None:
    scale = scenario.scale
    await scenario.start()
    scenario.start_load(steady_logins("steady", accounts=50))
    scenario.slack.down = ScriptedAnswer(500, "internal_error")
    scenario.smtp_down()
    began = time.monotonic()
    await scenario.sliding_accounts(scale.sliding_accounts, "slide-a")
    await asyncio.sleep(max(0.0, scale.slack_500_seconds - (time.monotonic() - began)))  # the outage's length
    scenario.slack.down = ScriptedAnswer(429, "rate_limited", {"Retry-After": "5"})
    await asyncio.sleep(scale.slack_429_seconds)
    attempts_while_down = scenario.slack.attempts
    scenario.slack.down = None
    await asyncio.sleep(max(0.0, scale.smtp_down_seconds - (time.monotonic() - began)))
    scenario.smtp_up()
    scenario.notes["slack_attempts_while_down"] = attempts_while_down
    row = await scenario.finish()
    assert attempts_while_down > 0, "no delivery was attempted while Slack was failing: the scenario tested nothing"
    assert row["deliveries"]["expected"] > 0, "no alert was raised: the scenario tested nothing"
    assert not row["violations"], row["violations"]
