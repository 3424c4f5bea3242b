"""The fault suite's own stack, started once per session and stopped at its end.

A private Kafka broker (deploy/kafka.sh under its own CHURNWATCH_HOME and free ports; 512 MB heap, as kafka.sh
sets it) and a private PostgreSQL cluster (deploy/postgres.sh, cluster ``faults`` on CHURNWATCH_FAULTS_PG_PORT,
default 5442). Scenarios kill and stop only these; the shared 9092/5432 stack is never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import RESULTS, Scenario
from tests.faults.scale import Scale, current_scale
from tests.support.fault_stack import FaultStack, PrivateKafka, PrivatePostgres, fault_sandbox


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: drives the whole pipeline on a private broker and database")


@pytest.fixture(scope="session")
def scale() -> Scale:
    return current_scale()


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    home = Path(tempfile.mkdtemp(prefix="churnwatch-faults-"))
    kafka = PrivateKafka(home / "kafka")
    postgres = PrivatePostgres(home / "postgres", int(os.environ.get("CHURNWATCH_FAULTS_PG_PORT", "5442")))
    try:
        postgres.start()
        kafka.start()
        yield FaultStack(kafka, postgres)
    finally:
        kafka.remove()
        postgres.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def scenario(request: pytest.FixtureRequest, fault_stack: FaultStack, scale: Scale) -> AsyncIterator[Scenario]:
    """The test's scenario in a fresh sandbox (process logs under test-output/faults/logs/); afterwards the broker
    and the database are up again for the next."""
    name = request.node.name.removeprefix("test_")[:40]
    logs = RESULTS.parent / "logs" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"
    async with fault_sandbox(fault_stack, "faults", logs) as box:
        s = Scenario(name, box, scale)
        try:
            yield s
        finally:
            s.close()
            fault_stack.kafka.start()  # no-ops when already up
            fault_stack.postgres.start()
