"""backtest against a real Prometheus holding a hand-written history: a counter whose rate
passes the alert's bound during exactly two hand-placed windows."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import exporter_command, free_port, tsdb_from_openmetrics

SAMPLE = 15  # seconds between the history's samples
STEP = 30  # the generated alert groups' evaluation interval
LOW, HIGH, BOUND = 1.0, 10.0, 5.5  # orders per second outside / inside the windows; the alert's
FOR = 300  # the alert's `for`
HOURS = 4
# Hand-placed windows of HIGH rate, seconds after the history's start: 20 min and 40 min.
WINDOWS = [(3600, 3600 + 1200), (9000, 9000 + 2400)]

SPEC = """
exporter:
  labels: {service: shop}
databases:
  app: {dsn: "sqlite:///unused.db"}
kpis:
  - name: orders_total
    type: counter
    database: app
    interval: 15s
    query: SELECT 1
    alerts:
      - name: OrderFlood
        severity: warning
        rate: 5m
        above: 5.5
        for: 5m
"""


def history(start: int) -> str:
    """OpenMetrics for the counter (LOW/s, HIGH/s inside WINDOWS) and an `up` of 1."""
    lines = []
    value = 0.0
    for offset in range(0, HOURS * 3600 + 1, SAMPLE):
        if offset:
            inside = any(a < offset <= b for a, b in WINDOWS)
            value += SAMPLE * (HIGH if inside else LOW)
        lines.append(
            f'orders_total{{job="kpi-exporter",instance="shop:9091"}} {value} {start + offset}'
        )
    for offset in range(0, HOURS * 3600 + 1, SAMPLE):
        lines.append(f'up{{job="kpi-exporter",instance="shop:9091"}} 1 {start + offset}')
    return "\n".join(lines) + "\n# EOF\n"


def backtest(spec: Path, url: str, start: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *exporter_command(),
            "backtest",
            "-c",
            str(spec),
            "--prometheus",
            url,
            "--since",
            str(start),
            "--until",
            str(start + HOURS * 3600),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_backtest_finds_the_two_hand_placed_episodes(tmp_path: Path, run_prometheus: Any) -> None:
    start = int(time.time() // 3600) * 3600 - (HOURS + 2) * 3600
    directory = tsdb_from_openmetrics(history(start), tmp_path / "prometheus")
    prometheus = run_prometheus(directory, {"global": {"evaluation_interval": "30s"}})
    prometheus.wait_ready()
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)

    done = backtest(spec, prometheus.url, start, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = {a["alert"]: a for a in json.loads(done.stdout)["alerts"]}
    flood = report.pop("OrderFlood")
    # rate(orders_total[5m]) at a step t is the counter's increase over the 5 min of samples
    # up to t, over 300 s. It passes the midway BOUND once more than 150 s of the range are
    # inside a window: from 180 s after the window opens (at 150 s it equals the bound) to
    # 120 s after it closes. With `for: 5m` it fires from 480 s after the opening until the
    # step after the last, 150 s after the close: each episode lasts the window minus `for`
    # minus one step (870 s and 2070 s). Prometheus 3 leaves the range's first sample out
    # (285 s of samples), which moves the start one step earlier: hence the one-step margin.
    expected = [(start + a + 180 + FOR, b - a - FOR - STEP) for a, b in WINDOWS]
    episodes = [(e["start"], e["seconds"]) for e in flood["episodes"]]
    assert len(episodes) == 2, flood
    for (got_start, got_seconds), (want_start, want_seconds) in zip(
        episodes, expected, strict=True
    ):
        assert abs(got_start - want_start) <= STEP, (episodes, expected)
        assert abs(got_seconds - want_seconds) <= STEP, (episodes, expected)
    assert [s for _, s in expected] == [870, 2070]
    firing = sum(s for _, s in episodes)
    assert flood["firing_seconds"] == firing
    assert flood["longest_seconds"] == max(s for _, s in episodes)
    assert abs(flood["share"] - firing / (HOURS * 3600)) < 1e-9
    # The health alerts stay quiet: `up` is 1 throughout and no self-metric says otherwise.
    assert {name: a["episodes"] for name, a in report.items() if a["episodes"]} == {}
    # The history holds orders_total and up only: the alerts on the exporter's other series
    # have no data (not "0 episodes"); those on up or orders_total have.
    assert flood["no_data"] is False
    no_data = {name for name, a in report.items() if a["no_data"]}
    assert no_data == {
        "KpiExporterKpiFailing",  # kpi_exporter_kpi_up
        "KpiExporterKpiStale",  # kpi_exporter_last_success_timestamp_seconds
        "KpiExporterDatabaseDown",  # kpi_exporter_database_up
        "KpiExporterReloadFailed",  # kpi_exporter_config_last_reload_successful
    }
    assert {"KpiExporterAbsent", "KpiExporterDown"} <= set(report) - no_data  # up
    assert sorted(json.loads(done.stdout)["no_data"]) == sorted(no_data)
    marked = backtest(spec, prometheus.url, start, "--alert", "KpiExporterDatabaseDown")
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert "no data  (no sample of kpi_exporter_database_up)" in marked.stdout
    assert backtest(spec, prometheus.url, start, "--require-data").returncode == 1
    assert (
        backtest(spec, prometheus.url, start, "--require-data", "--alert", "OrderFlood")
    ).returncode == 0

    share = 100 * firing / (HOURS * 3600)  # about 20.8 %
    table = backtest(spec, prometheus.url, start, "--max-firing", f"{share - 1:.1f}%")
    assert table.returncode == 1, table.stdout + table.stderr
    assert "OrderFlood" in table.stdout and "over --max-firing" in table.stdout
    assert (
        backtest(spec, prometheus.url, start, "--max-firing", f"{share + 1:.1f}%").returncode == 0
    )

    unreachable = backtest(spec, f"http://127.0.0.1:{free_port()}", start)
    assert unreachable.returncode == 2
    assert "cannot reach Prometheus" in unreachable.stderr
