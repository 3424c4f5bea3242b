"""Fuzzing the published OpenAPI spec against a running ingest (schemathesis): whatever is sent, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from services.demo.processes import ServiceProcess, running
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration


@pytest.fixture
def running_ingest(sandbox: Sandbox, ports: dict[str, int]) -> Iterator[ServiceProcess]:
    env = {
        **sandbox.env,
        "CHURNWATCH_LOG_LEVEL": "ERROR",
        "CHURNWATCH_RATE_LIMIT_PER_SECOND": "10000",
        "CHURNWATCH_RATE_LIMIT_BURST": "10000",
    }
    with running({"ingest": ports["ingest"]}, env) as procs:
        yield procs["ingest"]


@pytest.fixture
async def fuzz_key(sandbox: Sandbox) -> str:
    return await issue_key(sandbox.settings, name="fuzz", scopes=frozenset(Scope))


def test_no_input_makes_ingest_fail_with_a_5xx(running_ingest: ServiceProcess, fuzz_key: str) -> None:
    schema = schemathesis.openapi.from_url(f"{running_ingest.url}/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/v1/events", "/v1/batch", "/v1/accounts/{account_id}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_5xx(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
            )

        no_5xx()
