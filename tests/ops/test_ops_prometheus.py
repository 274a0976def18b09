"""Prometheus configuration and alert rules, checked by the real promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

try:
    import dashboard_check as dc
except ImportError:  # pytest --import-mode=importlib
    from tests.ops import dashboard_check as dc

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "deploy" / "prometheus"
CONFIGS = ("prometheus.yml", "prometheus.local.yml")
RULES = PROM_DIR / "alerts.yml"
RULES_TEST = PROM_DIR / "alerts_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool is not installed")
    return subprocess.run(
        [binary, *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("config", CONFIGS)
def test_promtool_check_config(config: str) -> None:
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    # rule_files resolve relative to the config file and are checked with it.
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for group in doc["groups"] for r in group["rules"] if "alert" in r]


def test_every_alert_is_documented_and_has_severity() -> None:
    readme = (REPO / "deploy" / "README.md").read_text()
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["alert"] in readme, f"{rule['alert']} is not listed in deploy/README.md"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in _alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested quiet"


def test_alerts_use_exported_metric_names() -> None:
    known = dc.known_metric_names()
    problems = {
        rule["alert"]: sorted(unknown)
        for rule in _alert_rules()
        if (unknown := dc.unknown_metric_names(rule["expr"], known))
    }
    assert not problems, f"metric names not in pipeline.metrics: {problems}"


def test_scrape_jobs_match_the_alerts() -> None:
    """Alerts and dashboard select job="cdp-worker": every config must scrape under it."""
    for config in CONFIGS:
        doc = yaml.safe_load((PROM_DIR / config).read_text())
        jobs = {job["job_name"] for job in doc["scrape_configs"]}
        assert dc.JOB in jobs, config
        assert doc["rule_files"] == ["alerts.yml"], config
