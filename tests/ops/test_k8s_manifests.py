"""The Kubernetes manifests: valid against the API's schemas (deploy/check-k8s.sh: kubeconform, strict), and
what kubeconform cannot know: every container has requests and limits, every Deployment a disruption budget
that selects its pods and still lets a node drain, the console wired like the other services."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.demo.processes import REPO_ROOT

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
CHECK = REPO_ROOT / "deploy" / "check-k8s.sh"


def manifests(folder: Path = K8S_DIR) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == kind]


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for workload in of_kind("Deployment") + of_kind("Job"):
        for c in workload["spec"]["template"]["spec"]["containers"]:
            yield f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}", c


def run_check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CHECK), str(folder)], capture_output=True, text=True, timeout=600)


def test_the_manifests_pass_kubeconform() -> None:
    proc = run_check(K8S_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(manifests())} resources found" in proc.stdout
    assert "Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout


@pytest.mark.parametrize(
    ("original", "broken"),
    [("periodSeconds: 10}", "periodSecnds: 10}"), ("replicas: 2", 'replicas: "two"'), ("port: http}", "port: {}}")],
)
def test_kubeconform_refuses_a_broken_manifest(tmp_path: Path, original: str, broken: str) -> None:
    text = (K8S_DIR / "ingest.yaml").read_text()
    assert original in text
    (tmp_path / "ingest.yaml").write_text(text.replace(original, broken, 1))
    proc = run_check(tmp_path)
    assert proc.returncode != 0, f"{original!r} -> {broken!r} passed validation:\n{proc.stdout}"
    assert "churnwatch-ingest" in proc.stdout


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_every_container_has_cpu_and_memory_requests_and_limits() -> None:
    lacking = {
        name: c.get("resources")
        for name, c in containers()
        if not all(
            key in c.get("resources", {}).get(side, {}) for side in ("requests", "limits") for key in ("cpu", "memory")
        )
    }
    assert not lacking, f"containers without cpu+memory requests and limits: {lacking}"


def test_every_deployment_has_a_budget_that_selects_its_pods_and_lets_a_node_drain() -> None:
    budgets = {b["metadata"]["name"]: b["spec"] for b in of_kind("PodDisruptionBudget")}
    for deployment in of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        budget = budgets[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= labels.items(), f"the budget of {name} selects other pods"
        replicas = deployment["spec"]["replicas"]
        assert budget.get("minAvailable", 0) < replicas, f"{name}: minAvailable >= replicas blocks every drain"
        assert budget.get("maxUnavailable", 1) >= 1, f"{name}: maxUnavailable 0 blocks every drain"


def test_the_console_runs_like_the_other_services() -> None:
    (console,) = [d for d in of_kind("Deployment") if d["metadata"]["name"] == "churnwatch-console"]
    (c,) = console["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["churnwatch", "console"]
    assert c["ports"] == [{"name": "http", "containerPort": 8003}]
    assert {"name": "CHURNWATCH_HTTP_PORT", "value": "8003"} in c["env"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"configMapRef": {"name": "churnwatch"}} in c["envFrom"]
    (service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == "churnwatch-console"]
    assert service["spec"]["ports"][0]["port"] == 8003
    (config,) = of_kind("ConfigMap")
    assert config["data"]["CHURNWATCH_CONSOLE_SCORER_URL"] == "http://churnwatch-scorer:8001"
    assert config["data"]["CHURNWATCH_CONSOLE_ALERTER_URL"] == "http://churnwatch-alerter:8002"
