"""Rules generated for KPIs on several databases, judged by promtool: they lint, their own
generated tests pass, a threshold fires on the sum of two databases each under it, and a KPI
failing on one database alerts for that database alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT, tool
from support.many_databases import many_databases
from support.rules import rule_file_paths


def generate(tmp_path: Path) -> Path:
    config, _ = many_databases(tmp_path)
    out = tmp_path / "rules"
    command = [sys.executable, "-m", "exporter.cli", "generate", "rules", "-c", str(config)]
    result = subprocess.run(
        [*command, "-o", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return out


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=300, check=False
    )


def series(name: str, **labels: str) -> str:
    base = {"job": "kpi-exporter", "instance": "e:9091", "service": "shop", **labels}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(base.items())) + "}"


def test_generated_rules_lint_and_their_tests_pass(tmp_path: Path) -> None:
    out = generate(tmp_path)
    checked = promtool(
        "check", "rules", "--lint=all", "--lint-fatal", *map(str, rule_file_paths(out))
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted((out / "tests").glob("*.test.yaml"))
    assert tests
    ran = promtool("test", "rules", *map(str, tests))
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_sum_over_databases_and_failing_per_database(tmp_path: Path) -> None:
    out = generate(tmp_path)
    eu = {"database": "eu", "region": "europe"}
    us = {"database": "us", "region": "america"}
    test: dict[str, Any] = {
        "rule_files": [p.name for p in rule_file_paths(out)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # 60 + 60 open orders: each database under 100, their sum above it
                    {"series": series("open_orders", **eu), "values": "60x15"},
                    {"series": series("open_orders", **us), "values": "60x15"},
                    # the KPI polls fine on eu and fails on us
                    {
                        "series": series("kpi_exporter_kpi_up", kpi="open_orders", database="eu"),
                        "values": "1x30",
                    },
                    {
                        "series": series("kpi_exporter_kpi_up", kpi="open_orders", database="us"),
                        "values": "0x30",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "OpenOrdersHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "job": "kpi-exporter",
                                    "service": "shop",
                                    "severity": "warning",
                                    "kpi": "open_orders",
                                },
                                "exp_annotations": {
                                    "summary": "Open orders is above 100.",
                                    # 60 + 60: the value judged is the sum
                                    "description": "Open orders is 120, above the warning "
                                    "threshold of 100 (service=shop).",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": "KpiExporterKpiFailing",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "job": "kpi-exporter",
                                    "instance": "e:9091",
                                    "service": "shop",
                                    "kpi": "open_orders",
                                    "database": "us",
                                    "severity": "warning",
                                    "poll_interval": "1m",
                                },
                                "exp_annotations": {
                                    "summary": "A KPI query keeps failing.",
                                    "description": "KPI open_orders on e:9091 has failed its "
                                    "polls for 2m; kpi_exporter_query_errors_total says why.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = out / "many.test.yaml"
    path.write_text(yaml.safe_dump(test))
    ran = promtool("test", "rules", str(path))
    assert ran.returncode == 0, ran.stdout + ran.stderr
