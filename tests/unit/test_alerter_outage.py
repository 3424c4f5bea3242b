"""A PostgreSQL outage is logged as it happens: one line lost, one line back, a reminder per minute between."""

from __future__ import annotations

import logging

import pytest
from asyncpg.exceptions import CannotConnectNowError, UniqueViolationError  # type: ignore[import-untyped]
from sqlalchemy.exc import OperationalError

from services.alerter.outage import OutageLog, is_database_outage

LOST = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


def test_an_outage_of_seven_minutes_is_a_handful_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.outage")
    outage = OutageLog(log, remind_every=60.0)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        t = 0.0
        while t < 420:  # two workers and a scheduler failing about twice a second, like the outage seen
            outage.failed("delivery step", LOST, t)
            t += 0.5
        outage.succeeded(t)
        outage.succeeded(t + 1)  # back is said once
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("database lost (OperationalError")
    assert lines[-1] == "database back after 420 s (840 failed attempts)"
    assert len(lines) == 2 + 6, lines  # lost, a reminder each minute (60 ... 360 s), back
    assert not any(r.exc_info for r in caplog.records)  # no traceback per attempt


def test_other_failures_keep_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(logging.getLogger("test.outage"))
    with caplog.at_level(logging.INFO, logger="test.outage"):
        try:
            raise KeyError("payload")
        except KeyError as exc:
            outage.failed("delivery step", exc, 0.0)
    assert caplog.records[0].exc_info is not None and not outage.database_lost


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (LOST, True),
        (ConnectionRefusedError(), True),
        (OSError("reset"), True),
        (CannotConnectNowError("the database system is shutting down"), True),  # unwrapped, from a pool checkout
        (UniqueViolationError("duplicate key"), False),
        (ValueError("bad"), False),
    ],
)
def test_what_counts_as_the_database_being_gone(exc: BaseException, outage: bool) -> None:
    assert is_database_outage(exc) is outage
