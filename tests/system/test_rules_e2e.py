"""The rules the generator writes now for config/demo.yaml (not the committed rules/, which
test_committed_rules_are_current compares with them) in a real Prometheus scraping running
exporters on the demo data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml
from conftest import RunningPrometheus, wait_until
from support.rules import generated_demo_rules

BROKEN_ALERTS = {"KpiExporterKpiFailing", "KpiExporterDatabaseDown", "KpiExporterKpiStale"}


def _wait(what: str, check: Any, timeout: float, prometheus: RunningPrometheus) -> Any:
    """Poll `check()` until its answer's first item is true, at most `timeout` seconds."""

    last: list[Any] = [None]

    def reached() -> Any:
        if prometheus.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{prometheus.output()}")
        last[0] = check()
        return last[0] if last[0] and last[0][0] else None

    return wait_until(
        reached,
        timeout,
        0.5,
        what=lambda: f"{what}; last answer: {last[0]}",
        retry_on=(requests.RequestException,),
    )


def test_prometheus_evaluates_generated_rules(
    tmp_path: Path, run_exporter: Any, run_prometheus: Any
) -> None:
    healthy = run_exporter(
        ["-c", "config/demo.yaml", "--simulate"],
        env={
            "KPI_DEMO_DSN": f"sqlite:///{tmp_path}/demo.db",
            "KPI_STATE_DIR": str(tmp_path / "state"),
        },
    )
    broken = run_exporter(
        ["-c", "config/demo.yaml"],
        env={
            "KPI_DEMO_DSN": f"sqlite:///{tmp_path}/missing/none.db",
            "KPI_STATE_DIR": str(tmp_path / "state-broken"),
        },
    )
    healthy.wait_ready(timeout=60)
    broken.wait_ready(timeout=60, path="/health")
    # The generated rules with their group intervals (30s, SLO and baseline groups 5m) left out,
    # so every group evaluates each second: Prometheus starts a 5m group up to 5m late.
    rule_files = []
    expected = 0
    for path in generated_demo_rules(tmp_path / "generated"):
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            group.pop("interval", None)
            expected += len(group["rules"])
        (tmp_path / path.name).write_text(yaml.safe_dump(document))
        rule_files.append(str(tmp_path / path.name))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": "kpi-exporter",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{healthy.port}", f"127.0.0.1:{broken.port}"]}
                ],
            }
        ],
    }
    prometheus = run_prometheus(tmp_path, config)

    def rules_evaluated() -> tuple[bool, list]:
        groups = prometheus.api("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        pending = [(r["name"], r["health"], r.get("lastError")) for r in rules]
        done = len(rules) == expected and all(r["health"] != "unknown" for r in rules)
        return done, pending

    _, states = _wait("every rule evaluated", rules_evaluated, 90, prometheus)
    bad = [s for s in states if s[1] != "ok" or s[2]]
    assert not bad, bad

    def targets_up() -> tuple[bool, list]:
        result = prometheus.query("up")
        return len(result) == 2 and all(r["value"][1] == "1" for r in result), result

    _wait("both targets scraped", targets_up, 60, prometheus)

    def broken_alert() -> tuple[bool, list]:
        alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
        hits = [
            (a["labels"]["alertname"], a["state"], a["labels"].get("instance"))
            for a in alerts
            if a["labels"]["alertname"] in BROKEN_ALERTS
            and a["labels"].get("instance") == f"127.0.0.1:{broken.port}"
            and a["state"] in ("pending", "firing")
        ]
        return bool(hits), hits

    _, hits = _wait("an alert on the broken database", broken_alert, 90, prometheus)
    assert hits
    # the healthy exporter's KPIs raise no failing or database alert
    alerts = prometheus.api("/api/v1/alerts")["data"]["alerts"]
    assert not [
        a
        for a in alerts
        if a["labels"]["alertname"] in {"KpiExporterKpiFailing", "KpiExporterDatabaseDown"}
        and a["labels"].get("instance") == f"127.0.0.1:{healthy.port}"
    ]
