"""The demo database, its simulator, and the demo spec's queries on SQLite, PostgreSQL and
MariaDB."""

from __future__ import annotations

import random
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, mysql_connect, wait_until

from exporter import demo
from exporter.spec.loading import load_spec
from exporter.spec.model import Kpi, Spec
from exporter.spec.params import placeholders, to_pyformat, to_qmark_mysql

DEMO_SPEC = ROOT / "config" / "demo.yaml"


# 50 s into an incident (see demo.incident): the seed's last 300 s hold failed payments,
# which outside incidents are rare (demo.PAYMENT_FAILURE)
NOW = 1_699_995_650.0  # 2023-11-14T21:00:50Z


SEED = 20240601


TICKS = 5  # one-second ticks of activity after the seed, so updated queue jobs are compared too


# 30-day churn and 7-day retention move when users come back or age past a window, and
# payment failures are rare outside incidents: minutes, not seconds, for these three.
SLOW_KPIS = {"churned_users", "user_retention_ratio", "payment_failures_total"}


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec([DEMO_SPEC]).spec


def bind(kpi: Kpi, now: float, batch: int | None = None) -> dict[str, Any]:
    """The parameters the daemon binds for a first poll, limited to those the query uses."""
    values: dict[str, Any] = {"now": now, "last_success": 0.0, **kpi.params}
    if kpi.cursor is not None:
        values.update(
            cursor=kpi.initial_cursor,
            tiebreak=0,
            batch=batch or kpi.batch,
            settled=now - (kpi.settle or 0.0),
        )
    return {name: values[name] for name in placeholders(kpi.query)}


def run_sqlite(conn: sqlite3.Connection, kpi: Kpi, params: dict[str, Any]) -> tuple[list, list]:
    cur = conn.execute(kpi.query, params)
    return [d[0] for d in cur.description], cur.fetchall()


def run_pg(conn: Any, kpi: Kpi, params: dict[str, Any]) -> tuple[list, list]:
    cur = conn.execute(to_pyformat(kpi.query), params)
    return [d.name for d in cur.description], cur.fetchall()


def run_mariadb(conn: Any, kpi: Kpi, params: dict[str, Any]) -> tuple[list, list]:
    sql, names = to_qmark_mysql(kpi.query)
    cur = conn.cursor()
    cur.execute(sql, tuple(params[name] for name in names))
    columns, rows = [d[0] for d in cur.description], list(cur.fetchall())
    cur.close()
    return columns, rows


def normalized(rows: list, ordered: bool) -> list[tuple]:
    """Numbers as floats (PostgreSQL may answer Decimal or int where SQLite answers float)."""

    def value(v: object) -> object:
        if isinstance(v, bool):
            return v
        if isinstance(v, int | float | Decimal):
            return float(v)
        return v

    result = [tuple(value(v) for v in row) for row in rows]
    return result if ordered else sorted(result, key=repr)


def seeded_sqlite(now: float = NOW, ticks: int = TICKS) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    rng = random.Random(SEED)
    demo.create_schema(conn, "sqlite")
    demo.seed(conn, "sqlite", now, rng)
    for tick in range(1, ticks + 1):
        demo.insert_activity(conn, "sqlite", now + tick, rng, 1.0)
    return conn


def expected_columns(kpi: Kpi) -> set[str]:
    columns = set(kpi.labels)
    for column in (kpi.value_column, kpi.cursor, kpi.tiebreak):
        if column is not None:
            columns.add(column)
    return columns


class TestSchema:
    def test_create_schema_is_idempotent(self) -> None:
        conn = sqlite3.connect(":memory:")
        demo.create_schema(conn, "sqlite")
        demo.create_schema(conn, "sqlite")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert set(demo._TABLES) <= tables

    def test_unknown_dialect_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown dialect"):
            demo.create_schema(sqlite3.connect(":memory:"), "nosuchdb")

    def test_seed_refuses_a_database_with_users(self) -> None:
        conn = seeded_sqlite(ticks=0)
        with pytest.raises(ValueError, match="empty"):
            demo.seed(conn, "sqlite", NOW, random.Random(1))


class TestSeed:
    def test_history_is_non_trivial(self) -> None:
        conn = seeded_sqlite(ticks=0)
        for table in demo._TABLES:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert count >= 100, table
        oldest = conn.execute("SELECT min(created_at) FROM users").fetchone()[0]
        assert NOW - oldest > 45 * demo.DAY  # older than the 30-day churn window
        for table, column in (("payments", "created_at"), ("queue_jobs", "finished_at")):
            latest = conn.execute(f"SELECT max({column}) FROM {table}").fetchone()[0]
            assert latest <= NOW, table

    def test_user_gauges_match_a_python_count(self, spec: Spec) -> None:
        conn = seeded_sqlite(ticks=0)
        created = dict(conn.execute("SELECT id, created_at FROM users").fetchall())
        last_seen: dict[int, float] = {}
        for user, seen in conn.execute("SELECT user_id, last_seen FROM sessions"):
            last_seen[user] = max(seen, last_seen.get(user, 0.0))
        month, week = NOW - 30 * demo.DAY, NOW - 7 * demo.DAY
        churned = sum(1 for u, c in created.items() if c <= month and last_seen.get(u, 0) <= month)
        old = [u for u, c in created.items() if c <= week]
        retained = sum(1 for u in old if last_seen.get(u, 0) > week) / len(old)
        expected = {
            "churned_users": churned,
            "user_retention_ratio": retained,
            "active_users": sum(1 for s in last_seen.values() if s > NOW - 300),
            "active_users_24h": sum(1 for s in last_seen.values() if s > NOW - demo.DAY),
            "new_users_24h": sum(1 for c in created.values() if c > NOW - demo.DAY),
            "users_registered_total": len(created),
        }
        for name, value in expected.items():
            kpi = spec.kpi(name)
            _, rows = run_sqlite(conn, kpi, bind(kpi, NOW))
            assert rows == [(pytest.approx(value),)], name
        assert 0 < churned < len(created) and 0.05 < retained < 0.95

    def test_seed_holds_the_last_incident_before_the_recent_minutes(self) -> None:
        # 5 minutes before 00:02:30 UTC reach back to 23:57:30; the last incident before them
        # began at 21:00 (incidents: 90 s every 3 h), so 20:59-21:02:30 are seeded too
        now = 1_700_006_550.0  # 2023-11-15T00:02:30Z
        conn = sqlite3.connect(":memory:")
        demo.create_schema(conn, "sqlite")
        demo.seed(conn, "sqlite", now, random.Random(SEED))
        incident = 1_699_995_600.0  # 2023-11-14T21:00:00Z
        rows = conn.execute(
            "SELECT count(*), sum(status = 'failed') FROM payments WHERE created_at < ?",
            (now - demo.SEED_EVENT_SECONDS,),
        ).fetchone()
        first, last = conn.execute(
            "SELECT min(created_at), max(created_at) FROM http_requests WHERE created_at < ?",
            (now - demo.SEED_EVENT_SECONDS,),
        ).fetchone()
        assert incident - 60 <= first < incident - 50 and incident + 140 < last <= incident + 150
        # ~0.5 payments/s over 210 s, 40% failing in the incident's 90 s
        assert rows[0] > 60 and rows[1] >= 5, rows

    def test_same_rng_gives_the_same_database(self) -> None:
        first, second = seeded_sqlite(), seeded_sqlite()
        for table in demo._TABLES:
            query = f"SELECT * FROM {table} ORDER BY id"
            assert first.execute(query).fetchall() == second.execute(query).fetchall(), table


def same_rows_as_sqlite(spec: Spec, conn: Any, dialect: str, run: Any) -> list[str]:
    """Seed `conn` as the SQLite reference is seeded; every KPI's rows must match SQLite's."""
    lite = seeded_sqlite()
    rng = random.Random(SEED)
    demo.create_schema(conn, dialect)
    demo.create_schema(conn, dialect)
    demo.seed(conn, dialect, NOW, rng)
    for tick in range(1, TICKS + 1):
        demo.insert_activity(conn, dialect, NOW + tick, rng, 1.0)
    problems = []
    for kpi in spec.kpis:
        params = bind(kpi, NOW + TICKS)
        lite_columns, lite_rows = run_sqlite(lite, kpi, params)
        columns, rows = run(conn, kpi, params)
        if columns != lite_columns:
            problems.append(f"{kpi.name}: columns {columns} != {lite_columns}")
            continue
        if not expected_columns(kpi) <= set(columns):
            problems.append(f"{kpi.name}: missing columns in {columns}")
        ordered = kpi.cursor is not None
        got, want = normalized(rows, ordered), normalized(lite_rows, ordered)
        if not want or not _close(got, want):
            first = next((p for p in zip(got, want, strict=False) if p[0] != p[1]), None)
            problems.append(
                f"{kpi.name}: {len(got)} {dialect} rows, {len(want)} SQLite rows; "
                f"first difference {first}"
            )
    return problems


class TestKpiQueries:
    def test_every_query_returns_its_columns_on_sqlite(self, spec: Spec) -> None:
        conn = seeded_sqlite()
        for kpi in spec.kpis:
            columns, rows = run_sqlite(conn, kpi, bind(kpi, NOW + TICKS))
            assert expected_columns(kpi) <= set(columns), kpi.name
            assert rows, f"{kpi.name} returned no rows on the seeded database"

    def test_same_rows_on_postgresql_and_sqlite(self, spec: Spec, pg_schema: tuple) -> None:
        import psycopg

        dsn, _ = pg_schema
        with psycopg.connect(dsn) as pg:
            problems = same_rows_as_sqlite(spec, pg, "postgresql", run_pg)
        assert not problems, "\n".join(problems)

    def test_same_rows_on_mariadb_and_sqlite(self, spec: Spec, mysql_database: tuple) -> None:
        dsn, name = mysql_database
        conn = mysql_connect(dsn, name)
        try:
            problems = same_rows_as_sqlite(spec, conn, "mysql", run_mariadb)
        finally:
            conn.close()
        assert not problems, "\n".join(problems)

    def test_cursor_paging_reads_every_row_once(self, spec: Spec) -> None:
        conn = seeded_sqlite()
        now = NOW + TICKS
        for kpi in (k for k in spec.kpis if k.cursor is not None):
            _, everything = run_sqlite(conn, kpi, bind(kpi, now))
            assert len(everything) < kpi.batch, kpi.name
            names = [d[0] for d in conn.execute(kpi.query, bind(kpi, now)).description]
            at_cursor = names.index(kpi.cursor)
            at_tie = names.index(kpi.tiebreak) if kpi.tiebreak else None
            pages: list[tuple] = []
            params = bind(kpi, now, batch=7)
            for _ in range(len(everything) // 7 + 2):
                _, page = run_sqlite(conn, kpi, params)
                if not page:
                    break
                pages.extend(page)
                params["cursor"] = page[-1][at_cursor]
                if at_tie is not None:
                    params["tiebreak"] = page[-1][at_tie]
            assert pages == everything, kpi.name


class TestActivity:
    @pytest.mark.slow  # 600 simulated seconds, every KPI's query after each
    def test_every_kpi_moves(self, spec: Spec) -> None:
        conn = seeded_sqlite(ticks=0)
        rng = random.Random(SEED + 1)

        def results(now: float) -> dict[str, list]:
            return {
                kpi.name: normalized(run_sqlite(conn, kpi, bind(kpi, now))[1], False)
                for kpi in spec.kpis
            }

        before = results(NOW)
        moved_at: dict[str, int] = {}
        for second in range(1, 601):
            demo.insert_activity(conn, "sqlite", NOW + second, rng, 1.0)
            if second <= 60 or second % 30 == 0:
                for name, rows in results(NOW + second).items():
                    if rows != before[name]:
                        moved_at.setdefault(name, second)
        still = sorted({k.name for k in spec.kpis} - set(moved_at))
        assert not still, f"unchanged after 10 simulated minutes: {still}"
        slow = sorted(name for name, at in moved_at.items() if at > 60 and name not in SLOW_KPIS)
        assert not slow, f"took over a minute to move: {[(n, moved_at[n]) for n in slow]}"

    def test_rows_stay_in_the_simulated_past(self) -> None:
        conn = seeded_sqlite(ticks=30)
        end = NOW + 30
        for table, column in (
            ("users", "created_at"),
            ("sessions", "last_seen"),
            ("payments", "created_at"),
            ("generations", "created_at"),
            ("http_requests", "created_at"),
            ("errors", "created_at"),
            ("feature_events", "created_at"),
            ("queue_jobs", "finished_at"),
        ):
            assert conn.execute(f"SELECT max({column}) FROM {table}").fetchone()[0] <= end
        bad = conn.execute(
            "SELECT count(*) FROM queue_jobs WHERE finished_at < started_at "
            "OR (status IN ('succeeded', 'failed')) <> (finished_at IS NOT NULL) "
            "OR (status = 'queued') <> (started_at IS NULL)"
        ).fetchone()[0]
        assert bad == 0

    def test_zero_seconds_inserts_nothing(self) -> None:
        conn = seeded_sqlite(ticks=0)
        before = conn.execute("SELECT count(*) FROM http_requests").fetchone()[0]
        demo.insert_activity(conn, "sqlite", NOW, random.Random(1), 0.0)
        assert conn.execute("SELECT count(*) FROM http_requests").fetchone()[0] == before


class TestQueueStall:
    # what queue_active_jobs counted before it read the rows' times: the jobs' status now
    STATUS_COUNT = (
        "SELECT queue_name, SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) "
        "FROM queue_jobs GROUP BY queue_name"
    )

    @pytest.mark.slow  # 80 simulated minutes in 5 s ticks, the query after each
    def test_running_jobs_climb_in_a_stall_and_live_equal_the_status_count(
        self, spec: Spec
    ) -> None:
        stall, end = demo.QUEUE_STALL.windows(NOW, NOW + demo.WEEK)[0]
        kpi = spec.kpi("queue_active_jobs")
        conn = seeded_sqlite(now=stall - 600, ticks=0)
        rng = random.Random(SEED + 2)
        images: dict[float, float] = {}
        for at in range(int(stall - 595), int(end + 600), 5):
            demo.insert_activity(conn, "sqlite", at, rng, 5.0)
            live = normalized(run_sqlite(conn, kpi, bind(kpi, at))[1], False)
            assert live == normalized(conn.execute(self.STATUS_COUNT).fetchall(), False), at
            assert [q for q, _ in live] == sorted(q.name for q in demo.QUEUES), at
            images[at - stall] = dict(live)["images"]
        before = max(v for t, v in images.items() if t < 0)
        # the stall's hung jobs: 10% of images jobs (0.4 a second) for an hour, about 144
        assert before < 20 and images[1800] > 40 and images[3595] > 100, (before, images[3595])
        assert max(v for t, v in images.items() if t >= 3600 + 120) < 20  # released after


class TestSimulator:
    def test_creates_seeds_ticks_and_stops(self, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "demo.db"
        simulator = demo.Simulator(path, tick=0.05, seed=3)
        simulator.start()
        try:
            reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            users = reader.execute("SELECT count(*) FROM users").fetchone()[0]
            seeded = reader.execute("SELECT count(*) FROM http_requests").fetchone()[0]
            assert users >= demo.SEED_USERS

            # a 0.05 s tick adds 0.5 requests on average: wait for rows, not for a tick count
            def rows() -> int:
                return int(reader.execute("SELECT count(*) FROM http_requests").fetchone()[0])

            wait_until(
                lambda: simulator.ticks >= 5 and rows() > seeded, 30, 0.05, what="5 ticks, new rows"
            )
            assert simulator.ticks >= 5 and simulator.running
            assert rows() > seeded
            reader.close()
        finally:
            assert simulator.stop(timeout=10)
        assert not simulator.running
        assert simulator.stop()  # a second stop is harmless

    def test_restart_keeps_the_data(self, tmp_path: Path) -> None:
        path = tmp_path / "demo.db"
        first = demo.Simulator(path, tick=0.05, seed=4)
        first.start()
        assert first.stop(timeout=10)
        with sqlite3.connect(path) as conn:
            users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
            top = conn.execute("SELECT max(id) FROM http_requests").fetchone()[0]
        second = demo.Simulator(path, tick=0.05, seed=5)
        second.start()
        try:
            with sqlite3.connect(path) as conn:
                # not seeded again: the users table only grows by the simulated sign-ups
                again = conn.execute("SELECT count(*) FROM users").fetchone()[0]
                assert users <= again < users + 50
                assert conn.execute("SELECT max(id) FROM http_requests").fetchone()[0] >= top
        finally:
            assert second.stop(timeout=10)

    def test_refuses_a_second_start(self, tmp_path: Path) -> None:
        simulator = demo.Simulator(tmp_path / "demo.db", tick=0.05, seed=6)
        simulator.start()
        try:
            with pytest.raises(RuntimeError):
                simulator.start()
        finally:
            assert simulator.stop(timeout=10)


def _close(got: list[tuple], want: list[tuple]) -> bool:
    """Row by row equality, floats within a relative 1e-9 (sums may add in another order)."""
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > 1e-9 * max(1.0, abs(y)):
                    return False
            elif x != y:
                return False
    return True
