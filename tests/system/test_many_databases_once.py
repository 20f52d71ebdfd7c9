"""`kpi-exporter once` on a KPI over two databases: promtool accepts the exposition (one HELP
and TYPE per family), each database's series equal its own SQL, and a database that cannot be
opened fails the run (exit 1) while the other's series are still printed."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from conftest import exporter_command, tool

SPEC = """\
databases:
  eu: {{dsn: "sqlite:///{eu}", labels: {{region: europe}}}}
  us: {{dsn: "sqlite:///{us}", labels: {{region: america}}}}
kpis:
  - name: open_orders
    help: Orders not shipped yet.
    type: gauge
    database: "*"
    interval: 1m
    labels: [status]
    query: SELECT status, count(*) AS value FROM orders GROUP BY status
"""


def make(path: Path, statuses: list[str]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (status TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?)", [(s,) for s in statuses])


def once(spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exporter_command(), "once", "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_once_prints_each_database_in_one_family(tmp_path: Path) -> None:
    promtool = tool("promtool")
    eu, us = tmp_path / "eu.db", tmp_path / "us.db"
    make(eu, ["new", "new", "paid"])
    make(us, ["new"])
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(eu=eu, us=us))
    done = once(spec)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=done.stdout, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("open_orders")]
    assert sorted(lines) == [
        'open_orders{database="eu",region="europe",status="new"} 2.0',
        'open_orders{database="eu",region="europe",status="paid"} 1.0',
        'open_orders{database="us",region="america",status="new"} 1.0',
    ]
    assert done.stdout.count("# TYPE open_orders gauge") == 1

    us.unlink()  # us cannot be opened now: only its part fails
    done = once(spec)
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() if line.startswith("open_orders")]
    assert len(lines) == 2 and all('database="eu"' in line for line in lines)
    assert 'kpi_exporter_kpi_up{database="us",kpi="open_orders"} 0.0' in done.stdout
    assert 'kpi_exporter_kpi_up{database="eu",kpi="open_orders"} 1.0' in done.stdout
