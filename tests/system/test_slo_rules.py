"""Latency and freshness SLOs: promtool's verdict on the generated rules and tests, and the
generated tests failing on mutants of the rules (a wrong bucket, a flipped objective, `<`
turned `<=`, another max_age, an exporter outage read as missing, the cursor lag ignored; the
page's comparisons turned `>=`, its window or its `for` changed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import tool
from support.slos import SPEC

from exporter.generation.rule_files import write_files
from exporter.spec.loading import load_spec


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    config = tmp_path / "spec.yaml"
    config.write_text(SPEC)
    out = tmp_path / "rules"
    write_files(load_spec([config]).spec, out)
    return out


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_lint_and_generated_tests_pass(rules: Path) -> None:
    files = [str(rules / "prometheus_alerts.yaml"), str(rules / "prometheus_rules.yaml")]
    check = _promtool("check", "rules", "--lint=all", "--lint-fatal", *files)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = sorted(str(p) for p in (rules / "tests").glob("kpi-*.test.yaml"))
    assert len(tests) == 3
    result = _promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


BUCKET = 'checkout_seconds_bucket{job="shop-kpis", le="2.5"}'
PAGE = (
    "job:checkout_seconds_latency:error_ratio_rate1h > 0.1344\n      and\n"
    "      job:checkout_seconds_latency:error_ratio_rate5m > 0.1344"
)
# the page's guard, up to its `for`
FOR = "\n      and\n      (?:.*)\n    for: 2m"
FRESH = "\n      ) < bool 600\n"


@pytest.mark.parametrize(
    ("file", "old", "new", "test"),
    [
        # the latency SLO counts the wrong bucket, below or above its bound
        ("rules", BUCKET, BUCKET.replace("2.5", "1.0"), "checkout_seconds"),
        ("rules", BUCKET, BUCKET.replace("2.5", "30.0"), "checkout_seconds"),
        # the objective flipped: a 99% budget instead of 1%, in the page and in the budget left
        ("alerts", "> 0.1344\n", "> 13.3056\n", "checkout_seconds"),
        ("rules", "error_ratio_rate4w / 0.01)", "error_ratio_rate4w / 0.99)", "checkout_seconds"),
        # the page's comparisons turned `>=` (probed at exactly 13.44 x the budget)
        ("alerts", PAGE, PAGE.replace(">", ">="), "checkout_seconds"),
        # the page's long window 2h or 30m (it fires a step late or early after a burn starts)
        ("rules", 'le="2.5"}[1h]', 'le="2.5"}[2h]', "checkout_seconds"),
        ("alerts", "error_ratio_rate1h >", "error_ratio_rate30m >", "checkout_seconds"),
        # the page's `for` a minute longer
        ("alerts", PAGE + FOR, PAGE + FOR.replace("2m", "3m"), "checkout_seconds"),
        # the minimum-traffic guard asks for more events than an hour of 1 per second
        (
            "alerts",
            "event_sample_rate5m[1h:5m]) * 300 >= 20\n",
            "event_sample_rate5m[1h:5m]) * 300 >= 20000\n",
            "checkout_seconds",
        ),
        # data exactly max_age old counted fresh; another max_age
        ("rules", FRESH, FRESH.replace("<", "<="), "checkout_seconds"),
        ("rules", ") < bool 300\n", ") < bool 600\n", "open_orders"),
        # an exporter that is gone read as fresh (1) or as missing (the `or` branch dropped)
        ("rules", "0 * absent_over_time", "1 * absent_over_time", "open_orders"),
        (
            "rules",
            "or\n      0 * absent_over_time",
            "and\n      0 * absent_over_time",
            "open_orders",
        ),
        # one of a KPI's two databases read as fresh while the exporter is gone
        (
            "rules",
            '0 * absent_over_time(kpi_exporter_last_success_timestamp_seconds{job="shop-kpis", '
            'database="tenant_b"',
            '1 * absent_over_time(kpi_exporter_last_success_timestamp_seconds{job="shop-kpis", '
            'database="tenant_b"',
            "tenant_orders",
        ),
        # the cursor lag ignored
        (
            "rules",
            "(last_over_time(kpi_exporter_cursor_lag",
            "(0 * last_over_time(kpi_exporter_cursor_lag",
            "checkout_seconds",
        ),
    ],
)
def test_generated_tests_fail_on_mutants(
    rules: Path, file: str, old: str, new: str, test: str
) -> None:
    path = rules / ("prometheus_rules.yaml" if file == "rules" else "prometheus_alerts.yaml")
    text = path.read_text()
    pattern = re.escape(old).replace(re.escape("(?:.*)"), "(.*)")
    # every occurrence, as a generator would write it; a line `(?:.*)` stands for is kept
    mutant, count = re.subn(pattern, lambda m: new.replace("(?:.*)", "".join(m.groups())), text)
    assert count, old
    path.write_text(mutant)
    result = _promtool("test", "rules", str(rules / "tests" / f"kpi-{test}.test.yaml"))
    output = result.stdout + result.stderr
    # a test ran and an expectation failed (not a rule file promtool could not load)
    assert result.returncode == 1 and "FAILED:" in output, output
    assert "got:" in output or "exp:" in output, output
