"""Cursor KPIs end to end on PostgreSQL, MariaDB and SQLite: exactly once across restarts and
SIGKILL."""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import mysql_connect, wait_until
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
BUCKETS = [0.1, 1, 5]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "service"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def spec_text(dsn: str, state: Path, batch: int, timestamps: str) -> str:
    """Counter by id, summed counter, and a histogram on a timestamp cursor with tiebreak."""
    initial = {
        "timestamptz": "'1970-01-01T00:00:00+00:00'",
        "datetime(6)": "'1970-01-01 00:00:00'",
    }.get(timestamps, "0")
    return f"""
exporter:
  labels: {{service: t}}
  state_dir: {state}
databases:
  app: {{dsn: "{dsn}", max_connections: 3}}
kpis:
  - name: events_total
    type: counter
    database: app
    interval: 1s
    cursor: id
    start: earliest
    batch: {batch}
    labels: [kind]
    query: SELECT id, kind FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
  - name: event_amount_total
    type: counter
    database: app
    interval: 1s
    cursor: id
    start: earliest
    batch: {batch}
    labels: [kind]
    value: amount
    query: SELECT id, kind, amount FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
  - name: event_seconds
    type: histogram
    database: app
    interval: 1s
    cursor: at
    tiebreak: id
    initial_cursor: {initial}
    settle: 2s
    start: earliest
    batch: {batch}
    buckets: {BUCKETS}
    labels: [kind]
    value: amount
    query: |
      SELECT id, at, kind, amount FROM events
      WHERE (at > :cursor OR (at = :cursor AND id > :tiebreak)) AND at <= :settled
      ORDER BY at, id LIMIT :batch
"""


class Backend:
    """One database under test: DDL, inserts and ground truth in its own dialect."""

    def __init__(self, name: str, dsn: str, connect: Callable[[], Any], placeholder: str, at: str):
        self.name, self.dsn, self.connect, self.ph, self.at = name, dsn, connect, placeholder, at

    def setup(self) -> None:
        with self.connect() as conn:
            ident = {"postgresql": "BIGSERIAL", "mariadb": "BIGINT AUTO_INCREMENT"}.get(
                self.name, "INTEGER"
            )
            conn.execute(
                f"CREATE TABLE events (id {ident} PRIMARY KEY, kind TEXT NOT NULL,"
                f" amount DOUBLE PRECISION NOT NULL, at {self.at} NOT NULL)"
            )
            if self.name == "mariadb":  # without it each batch sorts the table: 100k rows, 20 s
                conn.execute("CREATE INDEX events_at ON events (at, id)")
            conn.commit()

    def insert(self, rows: list[tuple[str, float]], age: float = 3.0) -> None:
        """Rows stamped `age` seconds ago, several sharing one timestamp."""
        stamp = time.time() - age
        values = [(kind, amount, self.stamp(stamp)) for kind, amount in rows]
        if not values:
            return  # MariaDB's executemany refuses an empty list
        with self.connect() as conn:
            cursor = conn.cursor()
            cursor.executemany(
                f"INSERT INTO events (kind, amount, at) VALUES ({self.ph}, {self.ph}, {self.ph})",
                values,
            )
            conn.commit()

    def stamp(self, epoch: float) -> Any:
        import datetime as dt

        if self.at == "TIMESTAMPTZ":
            return dt.datetime.fromtimestamp(epoch, dt.UTC)
        if self.at == "DATETIME(6)":  # no zone: the exporter's MariaDB sessions read UTC
            return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)
        return epoch

    def truth(self) -> Samples:
        expected: Samples = {}
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT kind, count(*), sum(amount),"
                " sum(CASE WHEN amount <= 0.1 THEN 1 ELSE 0 END),"
                " sum(CASE WHEN amount <= 1 THEN 1 ELSE 0 END),"
                " sum(CASE WHEN amount <= 5 THEN 1 ELSE 0 END) FROM events GROUP BY kind"
            ).fetchall()
        for kind, count, total, b01, b1, b5 in rows:
            key = (("kind", kind),)
            expected[("events_total", key)] = count
            expected[("event_amount_total", key)] = total
            expected[("event_seconds_count", key)] = count
            expected[("event_seconds_sum", key)] = total
            for le, value in (("0.1", b01), ("1.0", b1), ("5.0", b5), ("+Inf", count)):
                expected[("event_seconds_bucket", (("kind", kind), ("le", le)))] = value
        return expected

    def count(self) -> int:
        with self.connect() as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: Any, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "mariadb":
        dsn, name = request.getfixturevalue("mysql_database")
        chosen = Backend(
            "mariadb", dsn, lambda: _MariaDB(mysql_connect(dsn, name)), "?", "DATETIME(6)"
        )
    elif request.param == "sqlite":
        db = tmp_path / "events.db"

        def connect_sqlite() -> Any:
            conn = sqlite3.connect(db, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            return _Closing(conn)

        chosen = Backend("sqlite", f"sqlite:///{db}", connect_sqlite, "?", "DOUBLE PRECISION")
    else:
        pg = request.getfixturevalue("pg_schema")
        import psycopg

        dsn = pg[0]
        chosen = Backend("postgresql", dsn, lambda: psycopg.connect(dsn), "%s", "TIMESTAMPTZ")
    chosen.setup()
    yield chosen


class _MariaDB:
    """A MariaDB driver connection with sqlite3's `execute` shortcut, closed on exit."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> _MariaDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def execute(self, sql: str, values: tuple[Any, ...] = ()) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(sql, values)
        return cursor

    def cursor(self) -> Any:
        return self.conn.cursor()

    def commit(self) -> None:
        self.conn.commit()


class _Closing:
    """sqlite3's connection as a context manager that also closes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.commit()
        self.conn.close()


def wait_for(exporter: Any, predicate: Callable[[Samples], bool], timeout: float = 60) -> Samples:
    """The first scrape whose samples satisfy `predicate`."""
    scraped: list[Samples] = [{}]

    def satisfied() -> Samples | None:
        try:
            scraped[0] = parse(exporter.metrics())
        except requests.RequestException:  # the process may still be starting
            scraped[0] = {}
        return scraped[0] if scraped[0] and predicate(scraped[0]) else None

    return wait_until(
        satisfied, timeout, 0.3, what=lambda: f"a scrape ({len(scraped[0])} samples last)"
    )


def processed(samples: Samples, kpi: str) -> float:
    return samples.get(
        ("kpi_exporter_rows_processed_total", (("database", "app"), ("kpi", kpi))), 0.0
    )


def caught_up(total: int) -> Callable[[Samples], bool]:
    """Every KPI has counted `total` rows (summed over label sets; survives restarts)."""

    def check(samples: Samples) -> bool:
        events = sum(v for k, v in samples.items() if k[0] == "events_total")
        observed = sum(v for k, v in samples.items() if k[0] == "event_seconds_count")
        return events == total and observed == total

    return check


def published(samples: Samples) -> Samples:
    prefixes = ("events_total", "event_amount_total", "event_seconds_")
    return {k: v for k, v in samples.items() if k[0].startswith(prefixes)}


def assert_truth(samples: Samples, truth: Samples) -> None:
    got = published(samples)
    assert got.keys() == truth.keys()
    for key, value in truth.items():
        assert got[key] == pytest.approx(value), key


def random_rows(rng: random.Random, n: int) -> list[tuple[str, float]]:
    return [(rng.choice("abc"), rng.choice([0.05, 0.1, 0.5, 1.0, 3.0, 5.0, 9.0])) for _ in range(n)]


class TestExactlyOnce:
    def test_random_batches_while_polling(
        self, backend: Backend, tmp_path: Path, run_exporter: Any
    ) -> None:
        spec = tmp_path / "spec.yaml"
        spec.write_text(spec_text(backend.dsn, tmp_path / "state", 50, backend.at.lower()))
        exporter = run_exporter(["-c", str(spec)])
        exporter.wait_ready()
        rng = random.Random(5)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            backend.insert(random_rows(rng, rng.randint(0, 120)), age=3)
            time.sleep(rng.uniform(0, 0.4))
        total = backend.count()
        samples = wait_for(exporter, caught_up(total))
        samples = wait_for(exporter, lambda s: processed(s, "event_amount_total") == total)
        assert_truth(samples, backend.truth())
        full = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(exporter.metrics())
            for s in f.samples
        }
        lag = full[
            ("kpi_exporter_cursor_lag_seconds", (("database", "app"), ("kpi", "event_seconds")))
        ]
        assert 2 <= lag < 600  # the timestamp cursor trails now by at least `settle`

    def test_restart_and_sigkill_during_catch_up(
        self, backend: Backend, tmp_path: Path, run_exporter: Any
    ) -> None:
        spec = tmp_path / "spec.yaml"
        # batches of 20 and at most 1000 batches a poll: the catch-up spans several polls
        spec.write_text(spec_text(backend.dsn, tmp_path / "state", 20, backend.at.lower()))
        rng = random.Random(9)
        backend.insert(random_rows(rng, 300), age=5)
        first = run_exporter(["-c", str(spec)])
        before = wait_for(first, caught_up(300))
        assert first.stop() == 0  # SIGTERM: a clean exit
        # counters continue from their stored totals after a restart: no reset
        backend.insert(random_rows(rng, 100_000), age=5)
        second = run_exporter(["-c", str(spec)])
        mid = wait_for(second, lambda s: processed(s, "events_total") > 0)
        for key, value in published(before).items():
            assert mid.get(key, 0) >= value, key
        second.stop(signal.SIGKILL)  # mid catch-up: fetched and uncommitted batches are lost
        assert processed(mid, "events_total") < 100_000, "the kill came after the catch-up"
        third = run_exporter(["-c", str(spec)])
        # a deadline, not a measurement: 5,000 batch commits took under 3 minutes on a quiet
        # machine and over 10 on one loaded by other test runs
        wait_for(third, caught_up(100_300), timeout=900)
        amounts = wait_for(third, lambda s: processed(s, "event_amount_total") > 0, timeout=60)
        samples = wait_for(
            third,
            lambda s: (
                sum(v for k, v in s.items() if k[0] == "event_amount_total")
                == pytest.approx(
                    sum(v for k, v in backend.truth().items() if k[0] == "event_amount_total")
                )
            ),
            timeout=120,
        )
        assert amounts and published(samples)
        assert_truth(samples, backend.truth())


class TestSettle:
    @pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)
    def test_late_commit_is_counted(
        self, backend: Backend, tmp_path: Path, run_exporter: Any
    ) -> None:
        spec = tmp_path / "spec.yaml"
        spec.write_text(spec_text(backend.dsn, tmp_path / "state", 50, backend.at.lower()))
        exporter = run_exporter(["-c", str(spec)])
        exporter.wait_ready()
        # a transaction stamps its row now but commits 1.5 s later, after a later row committed
        with backend.connect() as late:
            if backend.name == "mariadb":
                late.execute("START TRANSACTION")  # its connections are autocommit
            late.execute(
                f"INSERT INTO events (kind, amount, at) VALUES ('late', 1, {backend.ph})",
                (backend.stamp(time.time()),),
            )
            time.sleep(0.2)
            backend.insert([("early", 1.0)], age=0)
            committer = threading.Timer(1.5, late.commit)
            committer.start()
            committer.join()
        samples = wait_for(exporter, lambda s: processed(s, "event_seconds") == 2, timeout=30)
        assert samples[("event_seconds_count", (("kind", "late"),))] == 1
        assert samples[("event_seconds_count", (("kind", "early"),))] == 1
