"""docker-compose.yml wires the console, Prometheus and Grafana to files that exist, and the Grafana dashboard
is one Grafana can provision: every panel on the provisioned datasource, the pipeline's rows in order.
(`bash deploy/check-compose.sh`, run by `make lint`, validates the compose file itself; the dashboard's queries
are checked against the real services by tests/integration/test_prometheus_scrape.py.)"""

from __future__ import annotations

import json
from typing import Any

import yaml

from services.demo.processes import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
GRAFANA = REPO_ROOT / "deploy" / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "churnwatch.json").read_text())


def test_the_console_runs_on_8003_after_scorer_and_alerter() -> None:
    console = COMPOSE["services"]["console"]
    assert console["command"] == ["churnwatch", "console"]
    assert "8003:8003" in console["ports"]
    assert {"scorer", "alerter"} <= set(console["depends_on"])
    assert console["environment"]["CHURNWATCH_CONSOLE_SCORER_URL"] == "http://scorer:8001"
    assert "8003" in " ".join(console["healthcheck"]["test"])


def test_every_bind_mount_names_a_file_of_the_repo() -> None:
    mounts = [
        (name, volume.split(":")[0])
        for name, service in COMPOSE["services"].items()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert {name for name, _ in mounts} >= {"prometheus", "grafana"}
    missing = [(name, source) for name, source in mounts if not (REPO_ROOT / source).exists()]
    assert not missing, f"bind mounts of files that do not exist: {missing}"


def test_grafana_provisions_the_dashboard_on_the_prometheus_datasource() -> None:
    (datasource,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "churnwatch.yml").read_text())["providers"]
    grafana = COMPOSE["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    panels = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
    wrong = [p["title"] for p in panels if p["datasource"]["uid"] != datasource["uid"]]
    assert not wrong, f"panels on another datasource: {wrong}"
    assert all(t["datasource"]["uid"] == datasource["uid"] for p in panels for t in p["targets"])


def test_the_dashboard_has_the_pipeline_rows_in_order_and_unique_panel_ids() -> None:
    rows = [p["title"].lower() for p in DASHBOARD["panels"] if p["type"] == "row"]
    expected = ["ingest", "produce", "consumers", "scorer", "signals", "alerts and deliveries", "outbox"]
    positions = [next(i for i, row in enumerate(rows) if word in row) for word in expected]
    assert positions == sorted(positions), rows
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert all(
        p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in DASHBOARD["panels"] if p["type"] != "row"
    )
