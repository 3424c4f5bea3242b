"""A real Prometheus scraping the real services: the key series exist, alerts fire under conditions the test
creates (Slack refusing every message until deliveries die; a stopped scorer), and every metric name the alert
rules and the Grafana dashboard use is one the services really export, so neither can silently drift.

One pipeline per module (starting Kafka consumers and Prometheus is the slow part); the tests run in file order
and the last one stops the scorer. Prometheus scrapes and evaluates every second; its rules are a copy of
deploy/prometheus/rules.yml with every ``for:`` shortened to 2 s (tests/support/prometheus.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.demo.processes import REPO_ROOT, ServiceProcess, free_port, running
from services.demo.sandbox import private_sandbox
from services.ingest.apikeys import Scope
from services.ingest.keystore import issue_key
from tests.support.polling import wait_until
from tests.support.prometheus import (
    PrometheusServer,
    PromQLError,
    alert_rules,
    declared_metric_names,
    ensure_prometheus_installed,
    load_rules,
    metric_names,
)
from tests.support.slack_server import ScriptedAnswer, SlackWebhookServer
from tests.support.smtp_server import SmtpServer

pytestmark = pytest.mark.integration

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "churnwatch.json"
ACCOUNT = "acct-prom"


def scraped_services() -> list[str]:
    """The three pipeline services, and the console once the CLI can run it (issue 12)."""
    cli = subprocess.run(
        [sys.executable, "-m", "services.cli", "--help"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    return ["ingest", "scorer", "alerter"] + (["console"] if re.search(r"\bconsole\b", cli.stdout) else [])


@dataclass
class ScrapedPipeline:
    procs: dict[str, ServiceProcess]
    prometheus: PrometheusServer
    slack: SlackWebhookServer
    auth: dict[str, str]

    def exported_names(self) -> set[str]:
        """Metric names in the services' /metrics (declared ones too, before their first sample), plus every
        name Prometheus scraped (``up``, ``scrape_*``)."""
        names = self.prometheus.metric_names()
        for proc in self.procs.values():
            names |= declared_metric_names(httpx.get(f"{proc.url}/metrics", timeout=10).text)
        return names


def console_env(ports: dict[str, int]) -> dict[str, str]:
    return {
        "CHURNWATCH_CONSOLE_SESSION_SECRET": "prometheus-test-session-secret-0123",
        "CHURNWATCH_CONSOLE_SCORER_URL": f"http://127.0.0.1:{ports['scorer']}",
        "CHURNWATCH_CONSOLE_ALERTER_URL": f"http://127.0.0.1:{ports['alerter']}",
    }


@pytest.fixture(scope="module")
async def pipeline(local_stack: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ScrapedPipeline]:
    try:
        ensure_prometheus_installed()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    slack, smtp = SlackWebhookServer().start(), SmtpServer().start()
    slack.down = ScriptedAnswer(500, "internal_error")  # every Slack message fails: deliveries retry, then die
    ports = {name: free_port() for name in scraped_services()}
    try:
        async with private_sandbox("prom", events_partitions=3) as (name, settings):
            env = {
                **name.env,
                "CHURNWATCH_EVENTS_PARTITIONS": "3",
                "CHURNWATCH_SLACK_WEBHOOK_URL": slack.url,
                "CHURNWATCH_SMTP_HOST": "127.0.0.1",
                "CHURNWATCH_SMTP_PORT": str(smtp.port),
                "CHURNWATCH_MIN_RULE_LIFT": "0",
                "CHURNWATCH_NOTIFY_MAX_AGE_SECONDS": str(40 * 86400),  # the history's first day closes are sent too
                "CHURNWATCH_DELIVERY_MAX_ATTEMPTS": "2",
                "CHURNWATCH_DELIVERY_MAX_AGE_SECONDS": "0",
                "CHURNWATCH_DELIVERY_BACKOFF_SECONDS": "0.2",
                "CHURNWATCH_DELIVERY_BACKOFF_CAP_SECONDS": "0.5",
                "CHURNWATCH_CLOCK_INTERVAL_SECONDS": "0.5",
                "CHURNWATCH_LOG_LEVEL": "WARNING",
                **console_env(ports),
            }
            key = await issue_key(settings, name="prometheus-test", scopes=frozenset(Scope))
            with running(ports, env) as procs:
                prometheus = PrometheusServer(tmp_path_factory.mktemp("prometheus"), ports).start()
                try:
                    yield ScrapedPipeline(procs, prometheus, slack, {"Authorization": f"Bearer {key}"})
                finally:
                    prometheus.stop()
    finally:
        slack.stop()
        smtp.stop()


def sliding_account_events(end: datetime) -> list[dict[str, Any]]:
    """28 days of steady logins, then a week of little use: a usage drop and more."""
    events = []
    for d in range(35):
        at = (end - timedelta(days=34 - d)).isoformat()
        for k in range(10 if d < 28 else 1):
            events.append(
                {"kind": "usage", "action": "login", "event_id": f"{ACCOUNT}-{d}-{k}", "account_id": ACCOUNT}
                | {"user_id": f"u{k}", "occurred_at": at}
            )
    return events


def send_traffic(p: ScrapedPipeline) -> None:
    ingest = p.procs["ingest"].url
    account = {
        "name": "Prom Corp",
        "arr": 90000,
        "touch_tier": "high",
        "csm": {"name": "Ana", "email": "a@x.io", "slack": "@ana"},
    }
    assert httpx.put(f"{ingest}/v1/accounts/{ACCOUNT}", json=account, headers=p.auth).status_code == 202
    events = sliding_account_events(datetime.now(UTC).replace(microsecond=0))
    resp = httpx.post(f"{ingest}/v1/events", json={"events": events}, headers=p.auth, timeout=30)
    assert resp.status_code == 202, resp.text
    bad = {"kind": "usage", "action": "login", "event_id": "bad", "account_id": ACCOUNT, "occurred_at": "yesterday"}
    assert httpx.post(f"{ingest}/v1/events", json=bad, headers=p.auth).status_code == 422
    assert httpx.post(f"{ingest}/v1/events", json=bad).status_code == 401  # no key: an auth failure


KEY_SERIES = {
    "ingest requests": 'churnwatch_ingest_request_seconds_count{route="/v1/events", status="202"}',
    "ingest accepted events": 'churnwatch_ingest_events_total{outcome="accepted"}',
    "ingest rejects by reason": 'churnwatch_ingest_events_total{outcome="rejected", reason!=""}',
    "ingest auth failures": "churnwatch_ingest_auth_failures_total",
    "produce latency": "churnwatch_ingest_produce_seconds_bucket",
    "scorer consumer progress": 'churnwatch_consumer_records_total{group=~".+[.]scorer", outcome="processed"}',
    "partitions assigned": "churnwatch_consumer_assigned_partitions",
    # the scorer's own loop (services/scorer/partition_loop.py) does not observe this histogram yet: any group
    "consumer batch time": "churnwatch_consumer_batch_seconds_count",
    "scorer events by outcome": 'churnwatch_scorer_events_total{outcome="counted"}',
    "signals by type": "churnwatch_scorer_signals_total",
    "alerter signals": "churnwatch_alerter_signals_total",
    "alerts": "churnwatch_alerter_alerts_total",
    "deliveries by outcome": "churnwatch_alerter_deliveries_total",
    "outbox depth": "churnwatch_alerter_outbox_depth",
    "outbox age": "churnwatch_alerter_outbox_oldest_age_seconds",
    "consumer lag": 'churnwatch_consumer_lag{group=~".+[.]scorer"}',
    "delivery delay": "churnwatch_alerter_signal_to_delivery_seconds_count",
}


def test_every_service_is_scraped_and_nothing_fires_while_all_is_well(pipeline: ScrapedPipeline) -> None:
    prom = pipeline.prometheus
    jobs = {f"churnwatch-{name}" for name in pipeline.procs}
    wait_until(lambda: prom.target_health() == dict.fromkeys(jobs, "up"), timeout=30, what=f"{jobs} scraped and up")
    assert prom.query('up{job=~"churnwatch-.*"} == 0') == []
    assert prom.firing("ChurnwatchServiceDown") == []
    assert prom.firing("ChurnwatchAlertDeliveriesDead") == []


def test_the_key_series_exist_once_traffic_flowed(pipeline: ScrapedPipeline) -> None:
    send_traffic(pipeline)
    pipeline.prometheus.wait_for_series(KEY_SERIES.values(), timeout=90)


def test_dead_deliveries_fire_an_alert_while_slack_refuses_everything(pipeline: ScrapedPipeline) -> None:
    prom = pipeline.prometheus
    wait_until(lambda: pipeline.slack.attempts >= 2, timeout=60, what="the alerter trying Slack")
    fired = wait_until(lambda: prom.firing("ChurnwatchAlertDeliveriesDead"), timeout=60, what="the alert firing")
    assert fired[0]["job"] == "churnwatch-alerter"
    assert float(prom.query("churnwatch_alerter_deliveries_dead")[0]["value"][1]) >= 1
    assert prom.firing("ChurnwatchServiceDown") == []


def dashboard_queries() -> dict[str, str]:
    """``panel title / refId`` -> PromQL of every panel target in the dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {f"{p['title']} / {t['refId']}": t["expr"] for p in panels if p["type"] != "row" for t in p["targets"]}


def grafana_to_promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "1h")


def unexported(queries: dict[str, str], exported: set[str]) -> dict[str, list[str]]:
    """query name -> the metric names it reads that no service exports."""
    return {name: sorted(metric_names(e) - exported) for name, e in queries.items() if metric_names(e) - exported}


def test_every_dashboard_query_parses_and_reads_only_exported_metrics(pipeline: ScrapedPipeline) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    refused = {}
    for name, expr in queries.items():
        try:
            pipeline.prometheus.query(grafana_to_promql(expr))
        except PromQLError as exc:
            refused[name] = str(exc)
    assert not refused, f"Prometheus refuses these dashboard queries: {refused}"
    with pytest.raises(PromQLError):  # the check can fail: a query that does not parse is refused
        pipeline.prometheus.query("sum(rate(churnwatch_ingest_events_total[5m])")
    exported = pipeline.exported_names()
    assert unexported({"typo": "rate(churnwatch_ingest_event_total[5m])"}, exported) == {
        "typo": ["churnwatch_ingest_event_total"]
    }
    unknown = unexported(queries, exported)
    assert not unknown, f"dashboard panels read metrics no service exports: {unknown}"


def test_every_alert_rule_reads_only_exported_metrics(pipeline: ScrapedPipeline) -> None:
    rules = {r["alert"]: r["expr"] for r in alert_rules(load_rules())}
    unknown = unexported(rules, pipeline.exported_names())
    assert not unknown, f"alert rules read metrics no service exports: {unknown}"


def test_a_stopped_scorer_fires_service_down(pipeline: ScrapedPipeline) -> None:
    prom = pipeline.prometheus
    pipeline.procs["scorer"].stop()
    fired = wait_until(lambda: prom.firing("ChurnwatchServiceDown"), timeout=30, what="ChurnwatchServiceDown firing")
    assert [a["job"] for a in fired] == ["churnwatch-scorer"]
