"""`verify` on a KPI polled on two databases: a live exporter, a real Prometheus scraping it,
and each database's rows compared with that database's own series, window by window."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from conftest import scraping, wait_until
from test_backfill_e2e import run_verify

SPEC = """\
exporter: {{state_dir: "{state}"}}
databases:
  eu: {{dsn: "sqlite:///{eu}"}}
  us: {{dsn: "sqlite:///{us}"}}
kpis:
  - name: events_total
    type: counter
    database: [eu, us]
    interval: 1s
    labels: [kind]
    cursor: id
    event_time: at
    start: earliest
    query: >-
      SELECT id, at, kind FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
"""


def insert(path: Path, rows: list[tuple[float, str]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO events (at, kind) VALUES (?, ?)", rows)


def test_verify_compares_each_database_with_its_own_series(
    tmp_path: Path, run_exporter: Callable, run_prometheus: Callable
) -> None:
    rng = random.Random(5)
    paths = {name: tmp_path / f"{name}.db" for name in ("eu", "us")}
    for path in paths.values():
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL, kind TEXT)")
        insert(path, [(time.time() - 600 + i, rng.choice("ab")) for i in range(0, 600, 7)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(state=tmp_path / "state", eu=paths["eu"], us=paths["us"]))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    prometheus = run_prometheus(tmp_path / "prometheus", scraping(exporter.port))
    prometheus.wait_ready()
    started = time.time()
    for _ in range(400):  # rows as they happen, us at twice eu's rate, over two 30 s windows
        insert(paths["eu"], [(time.time(), rng.choice("ab"))])
        insert(paths["us"], [(time.time(), rng.choice("ab")) for _ in range(2)])
        time.sleep(0.2)
        if time.time() > (started // 30 + 3) * 30 + 2:
            break
    for name, path in paths.items():
        with sqlite3.connect(path) as conn:
            (rows,) = conn.execute("SELECT count(*) FROM events").fetchone()
        wait_until(
            lambda name=name, rows=rows: (
                (result := prometheus.query(f'sum(events_total{{database="{name}"}})'))
                and float(result[0]["value"][1]) == rows
            ),
            60,
            0.5,
            what=f"Prometheus to hold {name}'s {rows} rows",
        )
    done = run_verify(spec, prometheus.url, "--windows", "2", "--window", "30s", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    cells = json.loads(done.stdout)["cells"]
    counted = {
        name: sum(c["counted"] for c in cells if c["series"].get("database") == name)
        for name in ("eu", "us")
    }
    assert counted["eu"] > 50 and counted["us"] > counted["eu"], counted
    assert {c["series"]["database"] for c in cells} == {"eu", "us"}
    assert all(c["drift"] == 0 for c in cells)
