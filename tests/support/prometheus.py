"""A real, throwaway Prometheus for tests: its config and a test copy of the alert rules in a temp dir, the
server on a free port (deploy/prometheus.sh run), and probes through its HTTP API.

The test copy of the rules is generated from deploy/prometheus/rules.yml: expressions, thresholds, labels and
annotations unchanged, only every ``for:`` shortened (``rules_with_short_for``), so an alert that needs minutes in
production fires within seconds of the condition the test creates.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.demo.processes import REPO_ROOT, free_port

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES_PATH = PROMETHEUS_DIR / "rules.yml"
SCRIPT = REPO_ROOT / "deploy" / "prometheus.sh"


def ensure_prometheus_installed() -> None:
    """Runs ``deploy/prometheus.sh install``; raises with its output if promtool or the server is missing."""
    proc = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"deploy/prometheus.sh install failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def load_rules(path: Path = RULES_PATH) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def alert_rules(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def rules_with_short_for(doc: Mapping[str, Any], short_for: str) -> dict[str, Any]:
    """The same rules with every ``for:`` replaced by ``short_for``. Pure."""
    groups = []
    for group in doc["groups"]:
        rules = [{**rule, "for": short_for} if "for" in rule else dict(rule) for rule in group["rules"]]
        groups.append({**group, "rules": rules})
    return {**doc, "groups": groups}


def scrape_config(targets: Mapping[str, int], rules_file: Path, interval: str) -> dict[str, Any]:
    """One job ``churnwatch-<service>`` per local service port, like deploy/prometheus/prometheus.yml. Pure."""
    jobs = [
        {
            "job_name": f"churnwatch-{service}",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}}],
        }
        for service, port in targets.items()
    ]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(rules_file)],
        "scrape_configs": jobs,
    }


_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"(?<![a-zA-Z0-9_:])\d+(\.\d+)?([eE][+-]?\d+)?[a-zA-Z]*")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "by", "without", "on", "ignoring"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels, keywords and durations left out). Pure.

    Good enough for the project's own queries: quoted strings, label matchers, ranges and grouping clauses are
    removed first, and a name directly followed by "(" is a function or an aggregation."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = text.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h")
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)  # 0.95, 1e3, and durations such as the 5m of "offset 5m"
    names = set()
    for match in _NAME.finditer(text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def declared_metric_names(exposition: str) -> set[str]:
    """The sample names each ``# TYPE`` line of a text exposition stands for."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum")}
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        names |= {name + s for s in suffixes.get(kind, ("",))}
    return names


class PrometheusServer:
    """``prometheus`` on 127.0.0.1:<free port> with a generated config; stop() ends the process it started."""

    def __init__(self, workdir: Path, targets: Mapping[str, int], *, interval: str = "1s", short_for: str = "2s"):
        self.port = free_port()
        self.workdir = workdir
        rules_file = workdir / "rules.yml"
        rules_file.write_text(yaml.safe_dump(rules_with_short_for(load_rules(), short_for), sort_keys=False))
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(scrape_config(targets, rules_file, interval), sort_keys=False))
        self._log = (workdir / "prometheus.log").open("w")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_within: float = 60.0) -> PrometheusServer:
        command = ["bash", str(SCRIPT), "run", str(self.config_file), str(self.port), str(self.workdir / "data")]
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready within {ready_within}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join((self.workdir / "prometheus.log").read_text().splitlines()[-lines:])

    def _get(self, path: str, **params: str) -> Any:
        resp = httpx.get(f"{self.url}{path}", params=params, timeout=10.0)
        body = resp.json()
        if body.get("status") != "success":
            raise PromQLError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises PromQLError when Prometheus refuses the expression (e.g. it does not parse)."""
        data = self._get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
        return result

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus has scraped so far (includes ``up`` and ``scrape_*``)."""
        return set(self._get("/api/v1/label/__name__/values"))

    def target_health(self) -> dict[str, str]:
        """job -> health ("up", "down", "unknown") of each active target."""
        return {t["labels"]["job"]: t["health"] for t in self._get("/api/v1/targets")["activeTargets"]}

    def alerts(self, state: str = "firing") -> list[dict[str, Any]]:
        return [a for a in self._get("/api/v1/alerts")["alerts"] if a["state"] == state]

    def firing(self, alertname: str) -> list[dict[str, str]]:
        """Label sets of the firing alerts of that name."""
        return [a["labels"] for a in self.alerts() if a["labels"]["alertname"] == alertname]

    def missing_series(self, exprs: Iterable[str]) -> list[str]:
        """The expressions that return no series."""
        return [e for e in exprs if not self.query(e)]

    def wait_for_series(self, exprs: Iterable[str], *, timeout: float) -> None:
        """Polls until every expression returns a series; the failure names the ones that never did."""
        wanted = list(exprs)
        deadline = time.monotonic() + timeout
        while missing := self.missing_series(wanted):
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout}s Prometheus still has no series for {missing}")
            time.sleep(0.5)


class PromQLError(Exception):
    """Prometheus answered a query with an error (bad_data: the expression does not parse)."""
