"""Operations tests: promtool on the alert rules, manifests and the compose file. No Kafka or PostgreSQL needed.

The tools are installed by the project's own scripts (deploy/prometheus.sh, deploy/check-k8s.sh); when they
cannot be had, the tests fail with the script's output: no silent skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.prometheus import ensure_prometheus_installed


@pytest.fixture(scope="session")
def promtool() -> Path:
    try:
        ensure_prometheus_installed()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    found = os.environ.get("CHURNWATCH_PROMTOOL") or shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(found).exists():
        pytest.fail("deploy/prometheus.sh install succeeded but there is no promtool")
    return Path(found)
