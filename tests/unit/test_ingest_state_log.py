"""shared.state_log: one line per state change and a rate-limited reminder, never one per failure."""

from __future__ import annotations

import logging

import pytest

from shared.state_log import QuietRepeats, StateChanges, StateLog


def test_one_line_when_it_goes_bad_a_reminder_a_minute_and_one_when_back() -> None:
    changes = StateChanges("database", remind_every=60.0)
    assert changes.success(0.0) is None
    assert changes.failure(10.0, "refused") == "database unavailable: refused"
    said = [changes.failure(10.0 + i * 0.01, "refused") for i in range(1, 5000)]
    assert said == [None] * 4999
    reminder = changes.failure(70.0, "refused")
    assert reminder is not None and "still unavailable after 60 s" in reminder and "5001 failures" in reminder
    assert changes.failure(71.0, "refused") is None
    assert changes.success(80.0) == "database back after 70 s (5002 failures)"
    assert changes.success(81.0) is None and not changes.is_failing


def test_settle_time_keeps_a_flickering_state_to_two_lines() -> None:
    changes = StateChanges("capacity", settle_seconds=10.0)
    lines = []
    for t in range(0, 30):  # shed, admit, shed, admit ... for 30 s
        lines += [changes.failure(float(t), "shedding"), changes.success(t + 0.5)]
    lines.append(changes.success(45.0))
    assert [x for x in lines if x] == ["capacity unavailable: shedding", "capacity back after 45 s (30 failures)"]


def test_state_log_writes_warning_then_info(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    state = StateLog(logging.getLogger("t"), "Kafka", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "t"):
        for _ in range(100):
            state.failing("timeout")
        now[0] = 5.0
        state.healthy()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Kafka unavailable: timeout"),
        ("INFO", "Kafka back after 5 s (100 failures)"),
    ]


def test_quiet_repeats_lets_a_message_through_once_a_minute_and_counts_the_rest() -> None:
    now = [0.0]
    quiet = QuietRepeats(every=60.0, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, args, None)

    passed = []
    for second in range(125):
        now[0] = float(second)
        r = record("Unable connect to node with id %s: %s", 1, "refused")
        if quiet.filter(r):
            passed.append(r.getMessage())
    assert quiet.filter(record("Unable to update metadata from %s", [1]))  # another message: its own count
    assert passed == [
        "Unable connect to node with id 1: refused",
        "Unable connect to node with id 1: refused (59 more like this in the last 60 s)",
        "Unable connect to node with id 1: refused (59 more like this in the last 60 s)",
    ]


def test_quiet_repeats_covers_the_library_loggers_children_and_nothing_else() -> None:
    now = [0.0]
    quiet = QuietRepeats(every=60.0, clock=lambda: now[0], prefix="aiokafka")

    def record(name: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, "Unable connect to node %s", ("1",), None)

    assert quiet.filter(record("aiokafka.conn"))
    assert not quiet.filter(record("aiokafka.conn"))  # a child's repeat is held back
    assert quiet.filter(record("aiokafka"))  # the parent's first is its own template
    assert quiet.filter(record("aiokafkaesque")) and quiet.filter(record("aiokafkaesque"))  # not under the prefix
    assert quiet.filter(record("services.scorer")) and quiet.filter(record("services.scorer"))
