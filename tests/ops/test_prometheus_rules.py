"""promtool on deploy/prometheus: the rules load, their unit tests pass, every alert rule has a firing and a
not-firing test, and those tests notice when a rule is broken (each rule mutated to never / always fire)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.prometheus import PROMETHEUS_DIR, alert_rules, load_rules

# the unit tests, per evaluation interval: rules reading days of history are tested every 10 minutes, the rest
# every minute (a test file has one interval)
RULES_TESTS = (PROMETHEUS_DIR / "rules_test.yml", PROMETHEUS_DIR / "rules_test_days.yml")


def run_promtool(promtool: Path, *args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_rules_pass_promtool_check(promtool: Path) -> None:
    proc = run_promtool(promtool, "check", "rules", "rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(alert_rules(load_rules()))} rules found" in proc.stdout


def test_the_scrape_config_passes_promtool_check(promtool: Path) -> None:
    proc = run_promtool(promtool, "check", "config", "--syntax-only", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rule_unit_tests_pass(promtool: Path) -> None:
    proc = run_promtool(promtool, "test", "rules", *(t.name for t in RULES_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def expectations() -> dict[str, tuple[int, int]]:
    """alertname -> (checks expecting it to fire, checks expecting it silent) in the unit test files."""
    counts: dict[str, tuple[int, int]] = {}
    for test in (t for path in RULES_TESTS for t in yaml.safe_load(path.read_text())["tests"]):
        for check in test.get("alert_rule_test", []):
            firing, silent = counts.get(check["alertname"], (0, 0))
            counts[check["alertname"]] = (firing + 1, silent) if check.get("exp_alerts") else (firing, silent + 1)
    return counts


def test_every_alert_rule_has_a_firing_and_a_not_firing_test() -> None:
    counts = expectations()
    untested = {
        rule["alert"]: counts.get(rule["alert"], (0, 0))
        for rule in alert_rules(load_rules())
        if min(counts.get(rule["alert"], (0, 0))) == 0
    }
    assert not untested, f"alert rules without a firing and a not-firing unit test (firing, silent): {untested}"
    unknown = set(counts) - {rule["alert"] for rule in alert_rules(load_rules())}
    assert not unknown, f"the unit tests test alerts that rules.yml does not have: {unknown}"


def mutated(doc: dict[str, Any], alertname: str, expr: str) -> dict[str, Any]:
    groups = [
        {**g, "rules": [{**r, "expr": expr} if r.get("alert") == alertname else r for r in g["rules"]]}
        for g in doc["groups"]
    ]
    return {**doc, "groups": groups}


BREAKAGES = {"never fires": "vector(0) > 1", "always fires": "vector(1)"}


def promtool_sections(output: str) -> dict[str, str]:
    """promtool test's stdout split per test file: path -> its lines ("SUCCESS" only for one that passed; the
    details of failures go to stderr)."""
    sections: dict[str, str] = {}
    for chunk in output.split("Unit Testing:")[1:]:
        path, _, rest = chunk.strip().partition("\n")
        sections[path.strip()] = rest
    return sections


def unit_tests_of(alertname: str) -> dict[str, Any]:
    """The unit test file that checks this alert, with only the test groups that do (the others cannot notice
    it), and that file's evaluation interval."""
    for path in RULES_TESTS:
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        doc["tests"] = [t for t in doc["tests"] if any(c["alertname"] == alertname for c in t["alert_rule_test"])]
        if doc["tests"]:
            return doc
    raise AssertionError(f"no unit test checks {alertname}")


def test_the_unit_tests_catch_each_rule_broken(promtool: Path, tmp_path: Path) -> None:
    """Each alert rule in turn replaced by one that never fires, then one that always fires: the unit tests
    must fail every time (one promtool run over all the broken copies, each with the tests of its rule)."""
    cases: dict[str, str] = {}
    for rule in alert_rules(load_rules()):
        for what, expr in BREAKAGES.items():
            case = tmp_path / f"{rule['alert']}-{what.replace(' ', '-')}"
            case.mkdir()
            (case / "rules.yml").write_text(yaml.safe_dump(mutated(load_rules(), rule["alert"], expr)))
            (case / "rules_test.yml").write_text(yaml.safe_dump(unit_tests_of(rule["alert"])))
            cases[str(case / "rules_test.yml")] = f"{rule['alert']} {what}"
    proc = run_promtool(promtool, "test", "rules", *cases, cwd=tmp_path)
    sections = promtool_sections(proc.stdout)
    assert set(sections) == set(cases), proc.stdout + proc.stderr
    assert proc.returncode != 0
    unnoticed = [cases[path] for path, text in sections.items() if "SUCCESS" in text]
    assert not unnoticed, f"rules broken like this still pass every unit test: {unnoticed}"


def test_the_setup_script_runs_every_check() -> None:
    proc = subprocess.run(
        ["bash", str(PROMETHEUS_DIR.parent / "prometheus.sh"), "check"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == 4, proc.stdout
