"""The demo's history generator: the simulator's incidents at the schedule it reports, the
daily cycle in the row counts, ids in event-time order, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from exporter import demo, demo_history
from exporter.history.backfill import backfill
from exporter.spec.loading import load_spec

DAY = 86400.0
HALF_HOUR = 1800.0
MIDNIGHT = 1_764_633_600.0  # 2025-12-02T00:00:00Z


def test_incident_windows_are_when_the_simulator_has_incidents() -> None:
    since, until = MIDNIGHT + 60.5, MIDNIGHT + DAY + 30
    windows = demo.INCIDENT.windows(since, until)
    # the first one began before `since` (at midnight) and still overlaps it; one every 3 h
    assert windows[0] == (MIDNIGHT, MIDNIGHT + 90) and len(windows) == 9
    assert windows[-1] == (MIDNIGHT + DAY, MIDNIGHT + DAY + 90)
    inside = [t for t in range(int(since), int(until)) if any(a <= t < b for a, b in windows)]
    assert inside == [t for t in range(int(since), int(until)) if demo.incident(t)]


def test_outage_windows_are_at_noon_utc() -> None:
    # an outage runs 12:00-12:12 UTC each day; a window that ends inside one still lists it
    windows = demo.OUTAGE.windows(MIDNIGHT, MIDNIGHT + 2 * DAY + 12 * 3600 + 60)
    noon = MIDNIGHT + 12 * 3600
    assert windows == [(noon + d * DAY, noon + d * DAY + 720) for d in range(3)]
    assert demo.outage(noon) and demo.outage(noon + 719) and not demo.outage(noon + 720)
    assert not demo.outage(noon - 1) and demo.incident(noon)  # an outage begins with an incident


def test_weekly_trouble_falls_on_its_weekday() -> None:
    # 2025-12-02 was a Tuesday: a weekly kind at TUESDAY + 6 h is active from 06:00 UTC that day
    weekly = demo.Trouble("weekly", demo.WEEK, demo.TUESDAY + 6 * 3600, 600)
    assert weekly.windows(MIDNIGHT - 3 * DAY, MIDNIGHT + 3 * DAY) == [
        (MIDNIGHT + 6 * 3600, MIDNIGHT + 6 * 3600 + 600)
    ]
    assert weekly.active(MIDNIGHT + 6 * 3600) and not weekly.active(MIDNIGHT + 6 * 3600 - 1)
    assert weekly.active(MIDNIGHT + 6 * 3600 + 7 * DAY)


def test_payments_halt_writes_no_payment_for_its_20_minutes_and_leaves_the_rest() -> None:
    """Tuesday 11:00-11:20 UTC (2025-12-02 was a Tuesday): no payment row, while the other
    tables fill as on any other day; the minutes around it have payments."""
    halt = MIDNIGHT + 11 * 3600
    assert demo.PAYMENTS_HALT.windows(MIDNIGHT, MIDNIGHT + DAY) == [(halt, halt + 1200)]
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    demo.seed_users(conn, "sqlite", halt - 600, random.Random(4))
    demo_history.write_history(conn, "sqlite", halt - 600, halt + 1800, random.Random(5))

    def count(table: str, since: float, until: float) -> int:
        query = f"SELECT count(*) FROM {table} WHERE created_at >= ? AND created_at < ?"  # nosec
        return int(conn.execute(query, (since, until)).fetchone()[0])

    assert count("payments", halt, halt + 1200) == 0
    # 0.475 payments/s at 11:00 (daily load 0.95): about 285 in each 10 minutes around it
    assert count("payments", halt - 600, halt) > 200
    assert count("payments", halt + 1200, halt + 1800) > 200
    assert count("generations", halt, halt + 1200) > 1500  # 2/s: ~2,280 in the 20 minutes


def test_daily_load_peaks_at_the_peak_hour_and_bottoms_twelve_hours_later() -> None:
    assert demo_history.daily_load(MIDNIGHT + 15 * 3600) == pytest.approx(1.0)
    assert demo_history.daily_load(MIDNIGHT + 3 * 3600) == pytest.approx(demo_history.TROUGH_LOAD)
    # halfway (a cosine at a quarter turn)
    halfway = (1 + demo_history.TROUGH_LOAD) / 2
    assert demo_history.daily_load(MIDNIGHT + 9 * 3600) == pytest.approx(halfway)
    assert demo_history.daily_load(MIDNIGHT + 21 * 3600 + DAY) == pytest.approx(halfway)


def check_history(conn: Any, dialect: str) -> None:
    """Half an hour at the trough and half an hour at the peak: ids follow event time, the
    half hours' rows are in the ratio of the daily cycle, payments fail far more often in
    incidents."""
    trough, peak = MIDNIGHT + 3 * 3600 - 900, MIDNIGHT + 15 * 3600 - 900
    rng = random.Random(5)
    demo.create_schema(conn, dialect)
    demo_history.write_history(conn, dialect, trough, trough + HALF_HOUR, rng)
    demo_history.write_history(conn, dialect, peak, peak + HALF_HOUR, rng)
    cur = conn.cursor()

    def counts(sql: str, *params: float) -> int:
        cur.execute(sql.replace("?", "%s") if dialect == "postgresql" else sql, params)
        return int(cur.fetchone()[0])

    cur.execute("SELECT created_at FROM http_requests ORDER BY id")
    times = [row[0] for row in cur.fetchall()]
    latest, behind = 0.0, 0.0
    for at in times:
        behind, latest = max(behind, latest - at), max(latest, at)
    assert behind <= demo_history.CHUNK  # rows of one chunk are written after the last
    assert trough <= min(times) and max(times) <= peak + HALF_HOUR
    between = "SELECT count(*) FROM http_requests WHERE created_at >= ? AND created_at < ?"
    night, day = (
        counts(between, trough, trough + HALF_HOUR),
        counts(between, peak, peak + HALF_HOUR),
    )
    # each hour's load at its middle (the cosine is flat near its peak and trough)
    expected = demo_history.daily_load(peak + 900) / demo_history.daily_load(trough + 900)
    assert day / night == pytest.approx(expected, rel=0.03), (day, night)
    windows = demo.INCIDENT.windows(trough, peak + HALF_HOUR)
    in_incident = " OR ".join("(created_at >= ? AND created_at < ?)" for _ in windows)
    bounds = [t for window in windows for t in window]
    share = {}
    for where, params in ((in_incident, bounds), (f"NOT ({in_incident})", bounds)):
        failed = counts(
            f"SELECT count(*) FROM payments WHERE status = 'failed' AND ({where})", *params
        )
        total = counts(f"SELECT count(*) FROM payments WHERE {where}", *params)
        share[where is in_incident] = failed / total
    assert share[True] > 5 * share[False], share


def test_history_on_sqlite() -> None:
    check_history(sqlite3.connect(":memory:"), "sqlite")


def test_history_on_postgresql(pg_schema: tuple[str, str]) -> None:
    import psycopg

    with psycopg.connect(pg_schema[0]) as conn:
        check_history(conn, "postgresql")


def test_seed_with_history_writes_events_before_the_recent_activity() -> None:
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    now = MIDNIGHT + 12 * 3600
    demo_history.seed_with_history(conn, "sqlite", now, random.Random(3), days=1 / 24)
    first = conn.execute("SELECT min(created_at) FROM payments").fetchone()[0]
    assert now - demo.SEED_EVENT_SECONDS - 3600 <= first < now - demo.SEED_EVENT_SECONDS - 3000
    ordered = [r[0] for r in conn.execute("SELECT created_at FROM payments ORDER BY id")]
    assert ordered == sorted(ordered)
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= demo.SEED_USERS


def test_seed_file_fills_a_new_database_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "demo.db"
    assert demo_history.seed_file(path, days=0.01, scale=0.5)
    conn = sqlite3.connect(path)
    first = conn.execute("SELECT count(*), min(created_at) FROM errors").fetchone()
    assert first[0] > 0 and first[1] < time.time() - demo.SEED_EVENT_SECONDS - 0.009 * DAY
    assert not demo_history.seed_file(path, days=0.01)  # it has users: left alone
    assert conn.execute("SELECT count(*), min(created_at) FROM errors").fetchone() == first


def test_backfilled_active_jobs_are_the_jobs_running_at_each_step(tmp_path: Path) -> None:
    """queue_active_jobs replayed over a queue stall equals, at every step, the jobs whose
    [started_at, finished_at) holds the step, counted over the whole table (the KPI reads
    only the last 2 h of jobs), every queue at every step."""
    stall, end = demo.QUEUE_STALL.windows(MIDNIGHT, MIDNIGHT + demo.WEEK)[0]
    path = tmp_path / "demo.db"
    conn = sqlite3.connect(path)
    demo.create_schema(conn, "sqlite")
    demo_history.write_history(conn, "sqlite", stall - 3600, end + 1800, random.Random(8))
    dsn = f"sqlite:///{path}"
    spec = load_spec([ROOT / "config" / "demo.yaml"], env={"KPI_DEMO_DSN": dsn}).spec
    step = 60.0
    summary = backfill(
        spec,
        since=stall - 1800,
        until=end + 1800,
        step=step,
        only=["queue_active_jobs"],
        target={"instance": "demo:9091"},
        output=tmp_path / "out",
        fmt="openmetrics",
        reorder=60.0,
    )
    assert summary.replayed == ["queue_active_jobs"] and not summary.skipped
    replayed: dict[float, dict[str, float]] = {}
    for file in sorted((tmp_path / "out").glob("*.om")):
        for line in file.read_text().splitlines():
            if line.startswith("queue_active_jobs{"):
                labels, value, at = line.rsplit(" ", 2)
                queue = dict(re.findall(r'(\w+)="([^"]*)"', labels))["queue_name"]
                replayed.setdefault(float(at), {})[queue] = float(value)
    queues = [name for (name,) in conn.execute("SELECT DISTINCT queue_name FROM queue_jobs")]
    expected = {}
    for index in range(int((end - stall + 3600) // step) + 1):
        at = stall - 1800 + index * step
        running = dict.fromkeys(queues, 0.0)
        for queue, count in conn.execute(
            "SELECT queue_name, count(*) FROM queue_jobs WHERE started_at <= ? "
            "AND (finished_at IS NULL OR finished_at > ?) GROUP BY queue_name",
            (at, at),
        ):
            running[queue] = float(count)
        expected[at] = running
    assert replayed == expected
    assert max(expected[end - step]["images"], expected[end - 2 * step]["images"]) > 60
