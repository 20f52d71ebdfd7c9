"""`kpi-exporter report` against a real Prometheus holding a hand-written history (backfilled with
promtool): every value the report prints is compared with a number computed here by hand from
the samples written, never with Prometheus evaluating the report's own expression (a flipped
ratio or a wrong quantile would pass that)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import exporter_command, tsdb_from_openmetrics

SCRAPE = 15  # seconds between samples; the spec's scrape_interval (the report's rate window: 60s)
BEFORE, AFTER = 3600, 1800  # the history runs from an hour before the test to 30 min after
SWITCH = 900  # the second phase starts 15 min before the test (the report reads 30m back)
JOB = 'job="kpi-exporter",instance="shop:9091",service="shop"'
LES = ("0.1", "0.5", "1", "+Inf")

SPEC = """
exporter:
  labels: {service: shop}
databases:
  app: {dsn: "sqlite:///unused.db"}
kpis:
  - name: queue_depth
    type: gauge
    database: app
    interval: 15s
    query: SELECT 1 AS value
    target: {value: 10, direction: below}
  - name: checkouts_total
    type: counter
    database: app
    interval: 15s
    query: SELECT 1 AS value
  - name: checkouts_ok_total
    type: counter
    database: app
    interval: 15s
    query: SELECT 1 AS value
  - name: latency_seconds
    type: histogram
    database: app
    interval: 15s
    cursor: id
    buckets: [0.1, 0.5, 1]
    query: SELECT id, seconds AS value FROM requests WHERE id > :cursor ORDER BY id LIMIT :batch
ratios:
  - name: checkout_success_ratio
    good: checkouts_ok_total
    total: [checkouts_total]
    window: 1m
    target: {value: 0.7, direction: above}
"""

# Per phase: the gauge's value; checkouts and good checkouts per scrape; each latency bucket's
# new observations per scrape (cumulative: le=0.1, 0.5, 1, +Inf).
PHASES = {
    "before": {"depth": 12, "all": 30, "ok": 15, "buckets": (2, 8, 10, 10)},
    "after": {"depth": 8, "all": 60, "ok": 45, "buckets": (2, 6, 10, 10)},
}
# What the report must say, by hand:
# - queue_depth: max of the one series: 12, then 8 (on target: below 10).
# - checkouts_total: the summed rate, 30 / 15 s = 2 per second, then 60 / 15 s = 4;
#   checkouts_ok_total: 15 / 15 s = 1, then 45 / 15 s = 3.
# - checkout_success_ratio: good rate over total rate, 15 / 30 = 0.5, then 45 / 60 = 0.75.
# - latency_seconds: its 95th percentile, rank 0.95 x 10 = 9.5 of the 10 observations a scrape,
#   in the bucket (0.5, 1]: before, 8 are under 0.5, so 0.5 + 0.5 x (9.5 - 8) / (10 - 8) =
#   0.875; after, 6 are: 0.5 + 0.5 x (9.5 - 6) / (10 - 6) = 0.9375.
EXPECTED = {
    "queue_depth": (12.0, 8.0),
    "checkouts_total": (2.0, 4.0),
    "checkouts_ok_total": (1.0, 3.0),
    "checkout_success_ratio": (0.5, 0.75),
    "latency_seconds": (0.875, 0.9375),
}


def history(start: int, switch: int, end: int) -> str:
    """OpenMetrics text of the phases' samples, every SCRAPE seconds from start to end; the
    counters start at 1000 (no extrapolation stops at zero)."""
    checkouts = good = 1000
    buckets = [1000, 1000, 1000, 1000]
    series: dict[str, list[str]] = {}
    for stamp in range(start, end + 1, SCRAPE):
        phase = PHASES["before" if stamp < switch else "after"]
        if stamp > start:
            checkouts, good = checkouts + phase["all"], good + phase["ok"]
            buckets = [old + new for old, new in zip(buckets, phase["buckets"], strict=True)]
        values = {
            "queue_depth": phase["depth"],
            "checkouts_total": checkouts,
            "checkouts_ok_total": good,
            **{
                f'latency_seconds_bucket{{le="{le}"}}': n
                for le, n in zip(LES, buckets, strict=True)
            },
            "latency_seconds_count": buckets[-1],
        }
        for name, value in values.items():
            metric, _, le = name.partition("{")
            labels = JOB + ("," + le.rstrip("}") if le else "")
            series.setdefault(name, []).append(f"{metric}{{{labels}}} {value} {stamp}")
    return "\n".join(line for lines in series.values() for line in lines) + "\n# EOF\n"


@pytest.fixture
def prometheus_url(tmp_path: Path, run_prometheus: Any) -> tuple[str, int]:
    """A Prometheus holding the history (which runs into the future, so that the report's
    `now` falls inside the second phase); returns its URL and the phase switch time."""
    now = int(time.time())
    base = now - now % SCRAPE
    start, switch, end = base - BEFORE, base - SWITCH, base + AFTER
    directory = tsdb_from_openmetrics(history(start, switch, end), tmp_path / "prometheus")
    prometheus = run_prometheus(directory, {"global": {"scrape_interval": "15s"}})
    prometheus.wait_ready()
    return prometheus.url, switch


def test_report_values_equal_hand_computed_numbers(
    tmp_path: Path, prometheus_url: tuple[str, int]
) -> None:
    url, switch = prometheus_url
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    done = subprocess.run(
        [
            *exporter_command(),
            "report",
            "-c",
            str(spec),
            "--prometheus",
            url,
            "--range",
            "30m",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    at = report["at"]
    # the report's instant and the one 30m before fall inside the two phases, each a whole
    # rate window (60 s) away from the switch
    assert switch + 60 <= at < switch + SWITCH + AFTER - 60, (switch, at)
    assert at - 1800 <= switch - 60, (switch, at)
    rows = {row["kpi"]: row for row in report["kpis"]}
    assert set(rows) == set(EXPECTED)
    for name, (before, after) in EXPECTED.items():
        row = rows[name]
        # rates extrapolate over the window from float timestamps: equal to a few ulps
        assert row["previous"] == pytest.approx(before, rel=1e-9), (name, row)
        assert row["current"] == pytest.approx(after, rel=1e-9), (name, row)
        assert row["change"] == pytest.approx((after - before) / before, rel=1e-9), (name, row)
        assert row["trend"] == ("up" if after > before else "down"), (name, row)
    depth = rows["queue_depth"]
    assert (depth["status"], depth["towards_target"]) == ("on_target", True)
    assert (depth["minimum"], depth["maximum"]) == (8.0, 12.0)
    # the range points: 12 at any instant before the switch's sample, 8 from it on
    points = depth["points"]
    assert points, depth
    assert [value for _, value in points] == [12.0 if t < switch else 8.0 for t, _ in points]
    assert depth["average"] == pytest.approx(
        sum(12.0 if t < switch else 8.0 for t, _ in points) / len(points), rel=1e-12
    )
    ratio = rows["checkout_success_ratio"]
    assert (ratio["kind"], ratio["status"], ratio["target"]) == ("ratio", "on_target", 0.7)
    assert rows["checkouts_total"]["status"] == "no_target"
