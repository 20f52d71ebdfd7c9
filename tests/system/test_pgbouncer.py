"""PostgreSQL through a real PgBouncer (Debian's package) in transaction pooling: the engine
contract (every KPI kind equals its SQL, timeouts, cancel, read-only, bound parameters) with
PgBouncer declared and detected; queries killed on the server; no server session left behind."""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import need, wait_until
from support.engines import EVENTS_DDL, Engine, EngineContract, Event, run_stopped
from support.pgbouncer import POOL_SIZE, PgBouncer, pgbouncer

from exporter.sources import registry
from exporter.sources.base import QueryError, Source
from exporter.sources.postgres import PostgresSource
from exporter.spec.model import Database

INSERT = "INSERT INTO events (id, kind, amount, stamp) VALUES (%s, %s, %s, %s)"
SLEEP = "SELECT pg_sleep(600) AS n"


@pytest.fixture
def bouncer(postgres_dsn: str) -> Iterator[PgBouncer]:
    executable = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    need(executable is not None, "pgbouncer is not installed (Debian package pgbouncer)")
    assert executable is not None
    with pgbouncer(executable, postgres_dsn) as running:
        yield running


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    """A fresh database (PgBouncer refuses the `options` a per-test schema would need)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def direct(postgres_dsn: str, database: str) -> str:
    return postgres_dsn.rsplit("/", 1)[0] + f"/{database}"


def sessions(postgres_dsn: str, database: str) -> list[tuple[str, str]]:
    """(state, query) of every server session on `database` but the one asking."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = %s"
            " AND pid <> pg_backend_pid()",
            [database],
        ).fetchall()
    return [(str(state), str(query)) for state, query in rows]


def sleeping(postgres_dsn: str, database: str) -> list[tuple[str, str]]:
    return [s for s in sessions(postgres_dsn, database) if s[0] == "active" and "pg_sleep" in s[1]]


def open_declared(database: Database) -> Source:
    return registry.open_source("app", database.model_copy(update={"pgbouncer": True}), 2.0)


def open_detected(database: Database) -> Source:
    assert database.pgbouncer is None
    return registry.open_source("app", database, 2.0)


@pytest.fixture(params=["declared", "detected"])
def engine(
    request: pytest.FixtureRequest, bouncer: PgBouncer, database: str, postgres_dsn: str
) -> Engine:
    server = direct(postgres_dsn, database)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(EVENTS_DDL)

    def insert(rows: Sequence[Event]) -> None:
        with psycopg.connect(server, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.executemany(INSERT, rows)

    def fetch(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(server) as conn:
            return conn.execute(sql).fetchall()

    opener = open_declared if request.param == "declared" else open_detected
    return Engine(bouncer.dsn(database), opener, insert, fetch, SLEEP)


class TestThroughPgbouncer(EngineContract):
    """Every contract test, once with `pgbouncer: true` and once detected."""


def test_a_timed_out_query_is_killed_on_the_server(
    engine: Engine, postgres_dsn: str, database: str
) -> None:
    source = engine.open_source(Database(dsn=engine.dsn, max_connections=1))
    try:
        with pytest.raises(QueryError) as caught:
            source.query(SLEEP, {}, 0.5)
        assert caught.value.reason == "timeout"
        assert sleeping(postgres_dsn, database) == []
    finally:
        source.close()


def test_a_client_side_cancel_reaches_the_server_through_pgbouncer(
    engine: Engine, postgres_dsn: str, database: str
) -> None:
    source = engine.open_source(Database(dsn=engine.dsn))
    seen_running: list[int] = []

    def cancel() -> None:
        if not seen_running:  # cancel only once the sleep is seen on the server
            if sleeping(postgres_dsn, database):
                seen_running.append(1)
            return
        source.cancel_running()

    try:
        errors = run_stopped(lambda: source.query(SLEEP, {}, 600.0), cancel)
        assert seen_running and [e.reason for e in errors] == ["timeout"]
        assert sleeping(postgres_dsn, database) == []
    finally:
        source.close()


def test_pgbouncer_that_ignores_options_is_detected_by_its_process_ids(
    postgres_dsn: str, database: str
) -> None:
    executable = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    need(executable is not None, "pgbouncer is not installed (Debian package pgbouncer)")
    assert executable is not None
    with pgbouncer(executable, postgres_dsn, ignore_startup_parameters="options") as bouncer:
        source = registry.open_source("app", Database(dsn=bouncer.dsn(database)), 2.0)
        try:
            # the same statements many times over several server sessions: a prepared
            # statement would be missing on (or clash with) another session
            errors: list[BaseException] = []

            def poll() -> None:
                try:
                    for _ in range(15):
                        source.query("SELECT count(*) AS n FROM pg_class", {}, 10.0)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=poll) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert errors == []
            assert isinstance(source, PostgresSource) and source.pgbouncer is True
        finally:
            source.close()


def test_no_server_session_outlives_the_queries(
    bouncer: PgBouncer, postgres_dsn: str, database: str
) -> None:
    before = sessions(postgres_dsn, database)
    source = registry.open_source(
        "app", Database(dsn=bouncer.dsn(database), max_connections=4), 2.0
    )
    outcomes: list[str] = []

    def poll(index: int) -> None:
        for round_ in range(6):
            sql = SLEEP if (index + round_) % 3 == 0 else "SELECT 1 AS n"
            try:
                source.query(sql, {}, 0.3)
                outcomes.append("ok")
            except QueryError as exc:
                outcomes.append(exc.reason)

    threads = [threading.Thread(target=poll, args=(i,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(set(outcomes)) == ["ok", "timeout"] and len(outcomes) == 24
        # every transaction ended: PgBouncer's server sessions are idle, within its pool
        during = sessions(postgres_dsn, database)
        assert 1 <= len(during) <= POOL_SIZE, during
        assert {state for state, _ in during} == {"idle"}, during
    finally:
        source.close()
    clients = [c for c in bouncer.admin("SHOW CLIENTS") if c["database"] == database]
    assert clients == []
    assert before == []
    bouncer.stop()
    wait_until(lambda: sessions(postgres_dsn, database) == before, 10, what="sessions to end")


def test_a_rotated_password_is_followed_after_authentication_fails(
    postgres_dsn: str, database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PgBouncer checks passwords (the test server trusts 127.0.0.1): the password changes,
    every client must log in again, the old one fails, and the rotated dsn_file is followed."""
    executable = shutil.which("pgbouncer") or shutil.which("/usr/sbin/pgbouncer")
    need(executable is not None, "pgbouncer is not installed (Debian package pgbouncer)")
    assert executable is not None
    old, new = (f"{word}-{uuid.uuid4().hex[:10]}-S3cr3t" for word in ("old", "new"))
    caplog.set_level(logging.DEBUG)
    with pgbouncer(executable, postgres_dsn, password=old) as bouncer:
        dsn_file = tmp_path / "dsn"
        dsn_file.write_text(bouncer.dsn(database) + "\n")
        source = registry.open_source("app", Database(dsn_file=dsn_file), 2.0)
        try:
            assert source.query("SELECT 1 AS n", {}, 10.0).rows == [(1,)]
            bouncer.set_password(new, database)
            failures: list[QueryError] = []

            def refused() -> bool:  # the file still holds the old password
                with pytest.raises(QueryError) as caught:
                    source.query("SELECT 1 AS n", {}, 10.0)
                failures.append(caught.value)
                # a poll may also time out waiting for the pool before its first login failed
                return caught.value.reason == "connection"

            wait_until(refused, 30, 0.5, what=lambda: f"an authentication failure: {failures}")
            assert "password authentication failed" in failures[-1].message
            dsn_file.write_text(bouncer.dsn(database) + "\n")
            assert source.query("SELECT 2 AS n", {}, 10.0).rows == [(2,)]  # no reload
            assert source.query("SELECT 3 AS n", {}, 10.0).rows == [(3,)]
        finally:
            source.close()
    assert "dsn_file_changed" in caplog.text
    messages = " ".join(f.message for f in failures)
    assert old not in caplog.text + messages and new not in caplog.text
