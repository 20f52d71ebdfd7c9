"""End to end: a real Prometheus scrapes the demo exporter (simulator running) and answers every
panel query of every generated demo dashboard with at least one series."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import ROOT, free_port, tool

from exporter.dashboards import boards, record_labels, render_board
from exporter.loading import load_spec

DEMO = ROOT / "config" / "demo.yaml"
RULES = ROOT / "rules" / "prometheus_rules.yaml"
SCRAPE = "1s"
# Grafana's $__rate_interval is at least 4 scrape intervals; the cursor KPIs poll every 10 s
RATE_INTERVAL = "20s"
WAIT = 300.0  # generous: the machine is shared; the loop ends as soon as all answer

pytestmark = pytest.mark.slow


class Prometheus:
    """A Prometheus server on loopback with a temporary data dir, stopped by its PID."""

    def __init__(self, tmp_path: Path, job: str, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
        }
        if RULES.exists():
            config["rule_files"] = [str(RULES)]
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.log = tmp_path / "prometheus.log"
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.output()}"
            try:
                if requests.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout}s:\n{self.output()}")

    def query(self, expr: str) -> tuple[int, str]:
        """How many series an instant query returns, and the error if it failed."""
        response = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            return 0, f"{body.get('errorType')}: {body.get('error')}"
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return 1, ""
        return len(data["result"]), ""

    def series(self, metric: str) -> list[list[str]]:
        """The label names (without __name__) of each series of a metric now."""
        response = requests.get(self.url + "/api/v1/query", params={"query": metric}, timeout=10)
        result = response.json()["data"]["result"]
        return [[name for name in item["metric"] if name != "__name__"] for item in result]

    def output(self) -> str:
        self._log_handle.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_handle.close()


@dataclass(frozen=True)
class Stack:
    """The running Prometheus, the exporter's job and instance, and its log."""

    prometheus: Prometheus
    job: str
    instance: str
    exporter_log: Callable[[], str]


@pytest.fixture
def stack(tmp_path: Path, run_exporter: Any) -> Iterator[Stack]:
    spec = load_spec([DEMO]).spec
    exporter = run_exporter(
        ["-c", str(DEMO), "--simulate"],
        env={
            "KPI_DEMO_DSN": f"sqlite:///{tmp_path}/demo.db",
            "KPI_STATE_DIR": str(tmp_path / "state"),
        },
    )
    exporter.wait_ready(timeout=90)
    instance = f"127.0.0.1:{exporter.port}"
    prometheus = Prometheus(tmp_path, spec.exporter.job, instance)
    try:
        prometheus.wait_ready()
        yield Stack(prometheus, spec.exporter.job, instance, exporter.output)
    finally:
        prometheus.stop()


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
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                found.append(
                    (data["title"], f"{panel['title']} [{target['refId']}]", target["expr"])
                )
    return found


def test_every_panel_query_returns_series(stack: Stack) -> None:
    prometheus, job, instance = stack.prometheus, stack.job, stack.instance
    targets = demo_targets()
    assert len(targets) > 50
    failing: dict[str, str] = {}
    deadline = time.monotonic() + WAIT
    pending = targets
    while pending and time.monotonic() < deadline:
        failing = {}
        still = []
        for board, panel, expr in pending:
            count, error = prometheus.query(expand(expr, job, instance))
            if count == 0:
                failing[f"{board} / {panel}"] = (
                    error or f"no series for {expand(expr, job, instance)}"
                )
                still.append((board, panel, expr))
        pending = still
        if pending:
            time.sleep(2)
    if failing:
        targets_state = requests.get(prometheus.url + "/api/v1/targets", timeout=10).json()
        health = [
            (t["scrapeUrl"], t["health"], t["lastError"])
            for t in targets_state["data"]["activeTargets"]
        ]
    assert not failing, (
        "panels without data:\n"
        + "\n".join(f"- {where}: {why}" for where, why in sorted(failing.items()))
        + f"\nscrape targets: {health}\nexporter log tail:\n{stack.exporter_log()[-3000:]}"
    )
    # the labels the generator read from each record's PromQL (legend, job and instance
    # filters) are the labels Prometheus' recorded series really carry
    spec = load_spec([DEMO]).spec
    assert spec.records
    for record in spec.records:
        expected = record_labels(spec, record)
        assert expected is not None, record.record
        series = prometheus.series(record.record)
        assert series, record.record
        for labels in series:
            assert sorted(labels) == sorted(expected), (record.record, labels)


def test_variables_filter_every_raw_selector(stack: Stack) -> None:
    """With $instance set to an instance that does not exist, panels over scraped series
    (not recording rules, not constants) return nothing: the filter is really applied."""
    prometheus, job = stack.prometheus, stack.job
    checked = 0
    deadline = time.monotonic() + WAIT
    # first make sure data is there at all (the other test may not have run first)
    while prometheus.query(f'kpi_exporter_kpi_up{{job="{job}"}}')[0] == 0:
        assert time.monotonic() < deadline, prometheus.output()
        time.sleep(1)
    for board, panel, expr in demo_targets():
        if "vector(" in expr or ("$instance" not in expr and ":" in expr):
            continue  # constants, and recording rules that aggregate instance away
        count, error = prometheus.query(expand(expr, job, "127.0.0.1:1"))
        assert not error, f"{board} / {panel}: {error}"
        assert count == 0, f"{board} / {panel} ignores $instance: {expr}"
        checked += 1
    assert checked > 30
