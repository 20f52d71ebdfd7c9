"""The exporter's own series a backfill writes beside the KPIs (last success, cursor lag),
against values computed by hand from a tiny SQLite table, and the live poll's cursor lag on
the same rows: the same numbers."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import tool

from exporter.collection.polls import KpiPoll
from exporter.collection.state import StateStore
from exporter.history.backfill import BackfillError, backfill
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.registry import open_source
from exporter.spec.loading import load_spec

START = 1_699_999_980.0  # a multiple of the step: the steps are START + 60 * i
STEP = 60.0
# (id order) event time offset from START, kind. Row 3 is 5 s behind row 2 (inside the
# reorder window); row 5 falls exactly on a step; row 6 is after --until.
ROWS = [(-30.0, "a"), (50.0, "a"), (45.0, "a"), (130.0, "b"), (180.0, "b"), (300.0, "a")]
SPEC = """\
exporter: {{labels: {{service: shop}}, job: shop-kpis}}
databases:
  app: {{dsn: "sqlite:///{db}"}}
kpis:
  - name: events_total
    help: Events.
    type: counter
    database: app
    interval: 10s
    cursor: id
    event_time: at
    start: earliest
    query: SELECT id, at FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
  - name: b_events_total
    help: Events of kind b.
    type: counter
    database: app
    interval: 10s
    cursor: id
    event_time: at
    start: earliest
    query: SELECT id, at FROM events WHERE kind = 'b' AND id > :cursor ORDER BY id LIMIT :batch
  - name: recent_events
    help: Events in the last minute.
    type: gauge
    database: app
    interval: 10s
    query: SELECT count(*) AS value FROM events WHERE at > :now - 60 AND at <= :now
"""
SAMPLE = re.compile(r"(kpi_exporter_\w+)\{(.*)\} (\S+) (\S+)")
LABELS = 'database="app",instance="shop:9091",job="shop-kpis",kpi="{}"'


def make(path: Path, rows: list[tuple[float, str]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at REAL, kind TEXT)"
        )
        conn.executemany("INSERT INTO events (at, kind) VALUES (?, ?)", rows)


def own_samples(out: Path) -> dict[tuple[str, str], dict[float, float]]:
    """(metric, labels) -> {timestamp: value} of the exporter's own series in the output."""
    found: dict[tuple[str, str], dict[float, float]] = {}
    for path in sorted(out.glob("*.om")):
        for line in path.read_text().splitlines():
            match = SAMPLE.fullmatch(line)
            if match:
                name, labels, value, at = match.groups()
                found.setdefault((name, labels), {})[float(at)] = float(value)
    return found


def test_last_success_and_cursor_lag_at_every_step(tmp_path: Path) -> None:
    make(tmp_path / "app.db", [(START + offset, kind) for offset, kind in ROWS])
    spec = load_spec([_write_spec(tmp_path)], env={}).spec
    summary = backfill(
        spec,
        since=START,
        until=START + 4 * STEP,
        step=STEP,
        only=(),
        target={"instance": "shop:9091"},
        output=tmp_path / "out",
        fmt="openmetrics",
        reorder=60.0,
    )
    steps = [START + i * STEP for i in range(5)]
    success = "kpi_exporter_last_success_timestamp_seconds"
    lag = "kpi_exporter_cursor_lag_seconds"
    expected = {
        (success, LABELS.format(kpi)): {at: at for at in steps}
        for kpi in ("events_total", "b_events_total", "recent_events")
    }
    # step time minus the newest event time at or before it (row 6 is past --until):
    #   all rows: -30 | max(50, 45) = 50 -> 60-50 | 120-50 | 180-180 | 240-180
    expected[(lag, LABELS.format("events_total"))] = dict(
        zip(steps, [30.0, 10.0, 70.0, 0.0, 60.0], strict=True)
    )
    # kind b has no row before START + 130: no lag (the live exporter publishes none either)
    expected[(lag, LABELS.format("b_events_total"))] = {steps[3]: 0.0, steps[4]: 60.0}
    assert own_samples(tmp_path / "out") == expected
    assert summary.own_samples == 3 * 5 + 5 + 2
    for path in (tmp_path / "out").glob("*.om"):
        text = path.read_text()
        assert text.count(f"# TYPE {success} gauge\n") == 1
        assert text.count(f"# TYPE {lag} gauge\n") == 1
        assert "service=" not in "".join(
            line for line in text.splitlines() if line.startswith("kpi_exporter_")
        )


def test_promtool_accepts_the_output(tmp_path: Path) -> None:
    promtool = tool("promtool")
    make(tmp_path / "app.db", [(START + offset, kind) for offset, kind in ROWS])
    spec = load_spec([_write_spec(tmp_path)], env={}).spec
    backfill(
        spec,
        since=START,
        until=START + 4 * STEP,
        step=STEP,
        only=(),
        target={},
        output=tmp_path / "out",
        fmt="openmetrics",
        reorder=60.0,
    )
    for path in (tmp_path / "out").glob("*.om"):
        done = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(tmp_path / "b")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["kpi", "database"])
def test_a_target_label_the_exporter_sets_itself_is_refused(tmp_path: Path, name: str) -> None:
    make(tmp_path / "app.db", [])
    spec = load_spec([_write_spec(tmp_path)], env={}).spec
    with pytest.raises(BackfillError, match=f"{name!r} is also a label of the exporter's own"):
        backfill(
            spec,
            since=START,
            until=START + STEP,
            step=STEP,
            only=(),
            target={name: "x"},
            output=tmp_path / "out",
            fmt="openmetrics",
            reorder=0.0,
        )


@pytest.mark.parametrize(
    ("step", "rows", "lag"),
    [(2, 3, 70.0), (3, 5, 0.0), (1, 3, 10.0)],
    ids=["newest-50s-at-120s", "on-a-step", "behind-in-id-order"],
)
def test_the_live_poll_shows_the_same_lag(tmp_path: Path, step: int, rows: int, lag: float) -> None:
    """A live poll at a step's time over the rows that existed then (those up to it)."""
    make(tmp_path / "app.db", [(START + offset, kind) for offset, kind in ROWS[:rows]])
    spec = load_spec([_write_spec(tmp_path)], env={}).spec
    metrics = SelfMetrics()
    source = open_source("app", spec.databases["app"], 5.0)
    try:
        store = StateStore(tmp_path / "state")
        poll = KpiPoll(spec, spec.kpis[0], source, metrics, lambda snapshot: None, store,
                       clock=lambda: START + step * STEP)  # fmt: skip
        poll.restore()
        assert poll.run(force=True), poll.status.last_error
    finally:
        source.close()
    shown = metrics.registry.get_sample_value(
        "kpi_exporter_cursor_lag_seconds", {"kpi": "events_total", "database": "app"}
    )
    assert shown == lag


def _write_spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(db=tmp_path / "app.db"))
    return path
