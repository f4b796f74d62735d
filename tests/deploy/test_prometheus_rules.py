"""deploy/prometheus/alerts.yaml, checked by Prometheus' own tool (issue 12, item 4).

``promtool check rules`` parses every expression; ``promtool test rules alerts.test.yaml`` feeds
synthetic series and checks that each alert fires on what should raise it, with its labels and
texts, and stays quiet on a healthy proxy. That the rules name series the proxy really serves is
checked against a real scrape in tests/e2e/test_workers_metrics.py.

Needs Debian's ``prometheus`` package (``promtool``): FAILS (never skips) without it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str, cwd: Path = RULES) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool is not None, "promtool not found: apt-get install prometheus"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_rules_parse() -> None:
    done = promtool("check", "rules", "alerts.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_each_alert_fires_when_it_should_and_only_then() -> None:
    done = promtool("test", "rules", "alerts.test.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_covered_by_a_unit_test() -> None:
    rules = yaml.safe_load((RULES / "alerts.yaml").read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((RULES / "alerts.test.yaml").read_text(encoding="utf-8"))
    fired = {
        check["alertname"]
        for case in tests["tests"]
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert alerts == fired, alerts ^ fired


def test_a_broken_threshold_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: the same tests against rules whose 5xx threshold is off."""
    for name in ("alerts.yaml", "alerts.test.yaml"):
        shutil.copy(RULES / name, tmp_path / name)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("> 0.05", "> 0.5"), encoding="utf-8")
    done = promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert done.returncode != 0 and "SsoProxyHigh5xxRate" in done.stdout + done.stderr
