"""End to end: a real Prometheus scrapes the demo exporter (simulator running), evaluates the
recording rules the generator writes now, and answers every panel query of every dashboard
generated now from config/demo.yaml with at least one series (the committed dashboards/ and
rules/ are compared with fresh output by test_committed_demo_dashboards_are_current and
test_committed_rules_are_current)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, RunningPrometheus, wait_until
from support.dashboards import panels_of
from support.rules import generated_demo_rules

from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.records import record_labels
from exporter.generation.dashboards.rendering import render_board
from exporter.spec.loading import load_spec

DEMO = ROOT / "config" / "demo.yaml"
SCRAPE = "1s"
# Grafana's $__rate_interval is at least 4 scrape intervals; the cursor KPIs poll every 10 s
RATE_INTERVAL = "20s"
# The SLOs' long-window records sit in groups evaluated every 5m at a phase of Prometheus'
# choosing: a record of a record appears at that group's first evaluation after its inputs,
# up to two intervals after start (the freshness SLI missed 300 s in one CI run). The loop
# ends as soon as all answer.
WAIT = 660.0


def prometheus_config(job: str, target: str, records: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": [str(records)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }


def count_series(prometheus: RunningPrometheus, expr: str) -> tuple[int, str]:
    """How many series an instant query returns, and the error if it failed."""
    body = prometheus.api("/api/v1/query", query=expr)
    if body.get("status") != "success":
        return 0, f"{body.get('errorType')}: {body.get('error')}"
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return 1, ""
    return len(data["result"]), ""


def series_labels(prometheus: RunningPrometheus, metric: str) -> list[list[str]]:
    """The label names (without __name__) of each series of a metric now."""
    return [[n for n in item["metric"] if n != "__name__"] for item in prometheus.query(metric)]


@dataclass(frozen=True)
class Stack:
    """The running Prometheus, the exporter's job and instance, and its log."""

    prometheus: RunningPrometheus
    job: str
    instance: str
    exporter_log: Callable[[], str]


@pytest.fixture
def stack(tmp_path: Path, run_exporter: Any, run_prometheus: Any) -> Iterator[Stack]:
    spec = load_spec([DEMO]).spec
    # Some series (failed payments: 0.05% normally) appear only in the simulator's incidents,
    # 90 s every 3 hours: the demo's seed holds the last one (demo.seed).
    exporter = run_exporter(
        ["-c", str(DEMO), "--simulate"],
        env={
            "KPI_DEMO_DSN": f"sqlite:///{tmp_path}/demo.db",
            "KPI_STATE_DIR": str(tmp_path / "state"),
        },
    )
    exporter.wait_ready(timeout=90)
    instance = f"127.0.0.1:{exporter.port}"
    generated_demo_rules(tmp_path / "rules")
    records = tmp_path / "rules" / "prometheus_rules.yaml"
    prometheus = run_prometheus(tmp_path, prometheus_config(spec.exporter.job, instance, records))
    prometheus.wait_ready()
    yield Stack(prometheus, spec.exporter.job, instance, exporter.output)


def expand(expr: str, job: str, instance: str) -> str:
    values = {
        "$__rate_interval": RATE_INTERVAL,
        "$__interval": SCRAPE,
        "$__range": "1h",
        "$instance": instance,
        "$job": job,
    }
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return expr


def demo_targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) for every panel target of every demo dashboard."""
    found = []
    for board in boards(load_spec([DEMO]).spec):
        data = render_board(board)
        for panel in panels_of(data):  # nested ones in collapsed rows too
            for target in panel["targets"]:
                found.append(
                    (data["title"], f"{panel['title']} [{target['refId']}]", target["expr"])
                )
    return found


def test_every_panel_query_returns_series(stack: Stack) -> None:
    prometheus, job, instance = stack.prometheus, stack.job, stack.instance
    targets = demo_targets()
    assert len(targets) > 50
    failing: dict[str, str] = {}
    pending = targets

    def every_panel_answers() -> bool:
        nonlocal failing, pending
        failing = {}
        still = []
        for board, panel, expr in pending:
            count, error = count_series(prometheus, expand(expr, job, instance))
            if count == 0:
                failing[f"{board} / {panel}"] = (
                    error or f"no series for {expand(expr, job, instance)}"
                )
                still.append((board, panel, expr))
        pending = still
        return not pending

    def panels_without_data() -> str:
        targets_state = requests.get(prometheus.url + "/api/v1/targets", timeout=10).json()
        health = [
            (t["scrapeUrl"], t["health"], t["lastError"])
            for t in targets_state["data"]["activeTargets"]
        ]
        return (
            "panels without data:\n"
            + "\n".join(f"- {where}: {why}" for where, why in sorted(failing.items()))
            + f"\nscrape targets: {health}\nexporter log tail:\n{stack.exporter_log()[-3000:]}"
        )

    wait_until(every_panel_answers, WAIT, 2, what=panels_without_data)
    # the labels the generator read from each record's PromQL (legend, job and instance
    # filters) are the labels Prometheus' recorded series really carry
    spec = load_spec([DEMO]).spec
    assert spec.records
    for record in spec.records:
        expected = record_labels(spec, record)
        assert expected is not None, record.record
        series = series_labels(prometheus, record.record)
        assert series, record.record
        for labels in series:
            assert sorted(labels) == sorted(expected), (record.record, labels)


def test_variables_filter_every_raw_selector(stack: Stack) -> None:
    """With $instance set to an instance that does not exist, panels over scraped series
    (not recording rules, not constants) return nothing: the filter is really applied."""
    prometheus, job = stack.prometheus, stack.job
    checked = 0
    # first make sure data is there at all (the other test may not have run first)
    wait_until(
        lambda: count_series(prometheus, f'kpi_exporter_kpi_up{{job="{job}"}}')[0] > 0,
        WAIT,
        1,
        what=lambda: f"kpi_exporter_kpi_up in Prometheus; its log:\n{prometheus.output()}",
    )
    for board, panel, expr in demo_targets():
        if "vector(" in expr or ("$instance" not in expr and ":" in expr):
            continue  # constants, and recording rules that aggregate instance away
        count, error = count_series(prometheus, expand(expr, job, "127.0.0.1:1"))
        assert not error, f"{board} / {panel}: {error}"
        assert count == 0, f"{board} / {panel} ignores $instance: {expr}"
        checked += 1
    assert checked > 30
