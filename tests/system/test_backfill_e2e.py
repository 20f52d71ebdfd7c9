"""Backfill end to end: blocks from `kpi-exporter backfill` loaded by a real Prometheus answer,
at past instants, what the same SQL answers at those instants; the live exporter then
continues the same series without a reset (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, exporter_command, scraping, tool, wait_until

DAY = 86400.0
STEP = 600.0  # longer than Prometheus' 5 m lookback: an absent gauge series stays absent
BUCKETS = [0.5, 1.0, 5.0]
KINDS = ("a", "b", "c")

Series = dict[tuple[tuple[str, str], ...], float]


class Backend:
    """One database: its DDL, inserts, spec KPIs and the reference SQL at an instant."""

    def __init__(self, name: str, dsn: str, connect: Callable[[], Any]) -> None:
        self.name = name
        self.dsn = dsn
        self.connect = connect
        self.postgres = name == "postgresql"

    def mark(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def create(self, rows: list[tuple[float, str, float]]) -> None:
        with self.connect() as conn:
            if self.postgres:
                conn.execute(
                    "CREATE TABLE events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                    " at TIMESTAMPTZ NOT NULL, kind TEXT NOT NULL, amount DOUBLE PRECISION)"
                )
            else:
                conn.execute(
                    "CREATE TABLE events (id INTEGER PRIMARY KEY, at DOUBLE PRECISION NOT NULL,"
                    " kind TEXT NOT NULL, amount DOUBLE PRECISION)"
                )
        self.insert(rows)

    def insert(self, rows: list[tuple[float, str, float]]) -> None:
        at = "to_timestamp(?)" if self.postgres else "?"
        with self.connect() as conn:
            conn.cursor().executemany(
                self.mark(f"INSERT INTO events (at, kind, amount) VALUES ({at}, ?, ?)"), rows
            )
            conn.commit()

    def rows_before(self, kind: str, edge: float, seconds: float) -> int:
        """How many rows of `kind` have an event time in (edge - seconds, edge]."""
        at = self.at("?")
        with self.connect() as conn:
            cur = conn.cursor()
            cur.execute(
                self.mark(
                    f"SELECT count(*) FROM events WHERE kind = ? AND at > {at} AND at <= {at}"
                ),
                (kind, edge - seconds, edge),
            )
            return int(cur.fetchone()[0])

    def at(self, placeholder: str) -> str:
        return f"to_timestamp({placeholder})" if self.postgres else placeholder

    def spec(self, state: Path) -> str:
        # PostgreSQL's histogram has a timestamp cursor, so its event_time defaults to `at`.
        histogram_cursor = (
            "cursor: at\n    initial_cursor: '1970-01-01T00:00:00+00:00'"
            if self.postgres
            else "cursor: at\n    event_time: at"
        )
        return f"""
exporter:
  labels: {{service: shop}}
  state_dir: {state}
  scrape_interval: 10s  # verify allows a row settle + 2 polls + this to reach Prometheus
databases:
  app: {{dsn: "{self.dsn}"}}
kpis:
  - name: events_total
    type: counter
    database: app
    interval: 1s
    cursor: id
    event_time: at
    start: earliest
    batch: 500
    labels: [kind]
    query: SELECT id, at, kind FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
  - name: event_amount_total
    type: counter
    database: app
    interval: 1s
    cursor: id
    event_time: at
    start: earliest
    batch: 700
    value: amount
    labels: [kind]
    query: SELECT id, at, kind, amount FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
  - name: event_seconds
    type: histogram
    database: app
    interval: 1s
    {histogram_cursor}
    tiebreak: id
    start: earliest
    batch: 300
    buckets: {BUCKETS}
    value: amount
    labels: [kind]
    query: |
      SELECT id, at, kind, amount FROM events
      WHERE (at > :cursor OR (at = :cursor AND id > :tiebreak))
      ORDER BY at, id LIMIT :batch
  - name: recent_events
    type: gauge
    database: app
    interval: 1s
    labels: [kind]
    query: |
      SELECT kind, count(*) AS value FROM events
      WHERE at > {self.at(":now - 3600")} GROUP BY kind
  - name: all_events
    type: gauge
    database: app
    interval: 1s
    query: SELECT count(*) AS value FROM events
"""

    def expected(self, instant: float) -> dict[str, Series]:
        """Every backfilled metric's series at `instant`, computed in SQL here."""
        at = self.at("?")
        result: dict[str, Series] = {}
        with self.connect() as conn:
            cur = conn.cursor()

            def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
                cur.execute(self.mark(sql), params)
                return list(cur.fetchall())

            upto = f"FROM events WHERE at <= {at} GROUP BY kind"
            result["events_total"] = {
                (("kind", k),): float(n) for k, n in rows(f"SELECT kind, count(*) {upto}", instant)
            }
            sums = rows(f"SELECT kind, sum(amount), count(*) {upto}", instant)
            result["event_amount_total"] = {(("kind", k),): float(s) for k, s, _ in sums}
            result["event_seconds_sum"] = result["event_amount_total"]
            result["event_seconds_count"] = {(("kind", k),): float(n) for k, _, n in sums}
            buckets: Series = {}
            for le in [*BUCKETS, float("inf")]:
                within = "1 = 1" if le == float("inf") else f"amount <= {le}"
                for kind, count in rows(
                    f"SELECT kind, sum(CASE WHEN {within} THEN 1 ELSE 0 END) {upto}", instant
                ):
                    le_text = "+Inf" if le == float("inf") else repr(le)
                    buckets[(("kind", kind), ("le", le_text))] = float(count)
            result["event_seconds_bucket"] = buckets
            gauge = f"SELECT kind, count(*) FROM events WHERE at > {self.at('? - 3600')}"
            result["recent_events"] = {
                (("kind", k),): float(n) for k, n in rows(gauge + " GROUP BY kind", instant)
            }
        return result


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "shop.db"
        yield Backend("sqlite", f"sqlite:///{path}", lambda: sqlite3.connect(path))
        return
    import psycopg

    dsn, _ = request.getfixturevalue("pg_schema")
    yield Backend("postgresql", dsn, lambda: psycopg.connect(dsn))


def history(now: float, rng: random.Random) -> list[tuple[float, str, float]]:
    """Three days of rows in insertion order, event times up to 90 s out of id order; some
    exactly on step instants (a row at a step's time counts at that step)."""
    rows = []
    start = now - 3 * DAY
    for index in range(9000):
        at = start + (3 * DAY - 300) * index / 9000 + rng.uniform(-90, 0)
        rows.append((round(at, 3), rng.choice(KINDS), round(rng.lognormvariate(0, 1), 4)))
    for step in range(int(start // STEP) + 2, int(now // STEP) - 1, 37):
        rows.append((step * STEP, rng.choice(KINDS), 1.0))
    return sorted(rows, key=lambda row: row[0] + rng.uniform(0, 90))


def observed(prometheus: Any, metric: str, instant: float, instance: str) -> Series:
    body = prometheus.api("/api/v1/query", query=metric, time=repr(instant))
    assert body["status"] == "success", body
    found: Series = {}
    for item in body["data"]["result"]:
        labels = item["metric"]
        assert labels.pop("job") == "kpi-exporter" and labels.pop("service") == "shop"
        labels.pop("__name__")
        assert labels.pop("instance") == instance
        found[tuple(sorted(labels.items()))] = float(item["value"][1])
    return found


def test_backfilled_blocks_equal_sql_at_past_instants_and_join_the_live_series(
    backend: Backend, tmp_path: Path, run_exporter: Callable, run_prometheus: Callable
) -> None:
    tool("promtool")
    rng = random.Random(12)
    now = time.time()
    backend.create(history(now, rng))
    spec = tmp_path / "spec.yaml"
    spec.write_text(backend.spec(tmp_path / "state"))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    instance = f"127.0.0.1:{exporter.port}"
    until = now - 60
    blocks = tmp_path / "blocks"
    done = subprocess.run(
        [
            *exporter_command(),
            "backfill",
            "-c",
            str(spec),
            "--since",
            repr(now - 3 * DAY),
            "--until",
            repr(until),
            "--step",
            "10m",
            "--reorder-window",
            "2m",
            "--label",
            f"instance={instance}",
            "-o",
            str(blocks),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped all_events: its query does not use :now" in done.stderr
    assert "late rows" not in done.stderr  # 90 s of disorder is inside the reorder window
    assert "backfilled 4 KPIs" in done.stdout

    directory = tmp_path / "prometheus"
    (directory / "tsdb").mkdir(parents=True)
    for block in blocks.iterdir():
        shutil.move(block, directory / "tsdb" / block.name)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "kpi-exporter", "static_configs": [{"targets": [instance]}]}
        ],
    }
    prometheus = run_prometheus(directory, config, ["--storage.tsdb.retention.time=30d"])
    prometheus.wait_ready()

    first = StepGridTimes(now - 3 * DAY, until)
    instants = sorted({first.times[0], first.times[-1], *rng.sample(first.times, 40)})
    for instant in instants:
        expected = backend.expected(instant)
        for metric, series in expected.items():
            got = observed(prometheus, metric, instant, instance)
            assert got.keys() == series.keys(), (metric, instant)
            for key, value in series.items():
                assert got[key] == pytest.approx(value, rel=1e-9), (metric, key, instant)

    # The live exporter (start: earliest) continues each backfilled series: new rows arrive,
    # Prometheus scrapes them, and over the seam there is one series per kind and no reset.
    backend.insert([(time.time(), kind, 0.7) for kind in KINDS for _ in range(5)])
    total = sum(backend.expected(time.time() + 1)["events_total"].values())
    wait_until(
        lambda: (
            (result := prometheus.query("sum(events_total)"))
            and float(result[0]["value"][1]) == total
        ),
        60,
        0.5,
        what=f"Prometheus to scrape the live total {total}",
    )
    for metric in ("events_total", "event_amount_total", "event_seconds_bucket"):
        window = f"{metric}[{int(time.time() - until) + 1200}s]"
        spans = prometheus.query(window)
        assert spans, metric
        for span in spans:
            stamps = [float(t) for t, _ in span["values"]]
            assert min(stamps) <= until < max(stamps), (metric, span["metric"])
        resets = prometheus.query(f"resets({window})")
        assert {float(r["value"][1]) for r in resets} == {0.0}, (metric, resets)

    # verify: the last 24 hourly windows in Prometheus agree with the database, series by series
    honest = run_verify(spec, prometheus.url, "--format", "json")
    assert honest.returncode == 0, honest.stdout + honest.stderr
    report = json.loads(honest.stdout)
    cells = report["cells"]
    assert report["drifting"] == 0 and len(cells) >= 24 * 3 * len(KINDS), len(cells)
    assert {c["kpi"] for c in cells} == {"events_total", "event_amount_total", "event_seconds"}
    assert sum(c["counted"] for c in cells if c["kpi"] == "events_total") > 500
    # a row inserted into a past window after the backfill: Prometheus never shows it there.
    # verify explains a difference up to the rows within its lag (12 s here) before an edge,
    # so the window is one whose edges have no kind "b" row in the 30 s before them (about half
    # of the 22 candidates: one in a million runs finds none).
    end = (time.time() // 3600) * 3600
    start = next(
        edge
        for edge in (end - hours * 3600 for hours in range(2, 24))
        if not backend.rows_before("b", edge, 30) and not backend.rows_before("b", edge + 3600, 30)
    )
    backend.insert([(start + 100, "b", 0.3)])
    drifted = run_verify(spec, prometheus.url)
    flagged = [line for line in drifted.stdout.splitlines() if "DRIFT" in line]
    window = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
    around = [line for line in drifted.stdout.splitlines() if line.startswith(window)]
    assert drifted.returncode == 1, (around, drifted.stderr)
    for kpi in ("events_total", "event_amount_total", "event_seconds"):
        assert any(
            line.startswith(window) and kpi in line and 'kind="b"' in line for line in flagged
        ), (kpi, window, flagged)
    assert all(line.startswith(window) for line in flagged), (window, flagged)


def run_verify(spec: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exporter_command(), "verify", "-c", str(spec), "--prometheus", url, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


class StepGridTimes:
    """The step instants the backfill writes, computed here from --since/--until/--step."""

    def __init__(self, since: float, until: float) -> None:
        first = -(-since // STEP) * STEP
        self.times = [first + i * STEP for i in range(int((until - first) // STEP) + 1)]


def test_backfill_without_promtool_says_how_to_get_it(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    backend = Backend("sqlite", f"sqlite:///{path}", lambda: sqlite3.connect(path))
    backend.create([(time.time() - 100, "a", 1.0)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(backend.spec(tmp_path / "state"))
    done = subprocess.run(
        [*exporter_command(), "backfill", "-c", str(spec), "--since", "1h", "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/nonexistent"},
        check=False,
    )
    assert done.returncode == 1
    assert "promtool not found" in done.stderr and "--format openmetrics" in done.stderr


def test_demo_prometheus_config_loads_the_generated_rules() -> None:
    """The config the README's demo backfill command starts Prometheus with."""
    done = subprocess.run(
        [tool("promtool"), "check", "config", str(ROOT / "config" / "prometheus-demo.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rule files found" in done.stdout


def test_verify_passes_on_live_scraped_data(
    tmp_path: Path, run_exporter: Callable, run_prometheus: Callable
) -> None:
    """Rows written while the exporter polls and Prometheus scrapes: each window's increase
    equals the rows of the window, up to rows counted within the exporter's lag of an edge."""
    path = tmp_path / "shop.db"
    backend = Backend("sqlite", f"sqlite:///{path}", lambda: sqlite3.connect(path))
    rng = random.Random(4)
    backend.create([(time.time() - 3600 + i, rng.choice(KINDS), 1.5) for i in range(0, 3600, 9)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(backend.spec(tmp_path / "state"))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    prometheus = run_prometheus(tmp_path / "prometheus", scraping(exporter.port))
    prometheus.wait_ready()
    started = time.time()
    for _ in range(400):  # rows as they happen, over two 30 s windows after the first scrape
        backend.insert([(time.time(), rng.choice(KINDS), rng.lognormvariate(0, 1))])
        time.sleep(0.2)
        if time.time() > (started // 30 + 3) * 30 + 2:
            break
    total = sum(backend.expected(time.time() + 1)["events_total"].values())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every row counted and scraped
        result = prometheus.query("sum(events_total)")
        if result and float(result[0]["value"][1]) == total:
            break
        time.sleep(0.5)
    done = run_verify(spec, prometheus.url, "--windows", "2", "--window", "30s", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    cells = json.loads(done.stdout)["cells"]
    assert sum(c["counted"] for c in cells if c["kpi"] == "events_total") > 50
    assert all(c["drift"] == 0 for c in cells)
