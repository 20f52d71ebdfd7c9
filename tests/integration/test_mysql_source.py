"""MysqlSource against the real MariaDB server, in-process: types, bound parameters, read-only
transactions, timeouts killed on the server, the KILL QUERY backstop, the pool bound, errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from conftest import free_port, mysql_connect, wait_until

from exporter.sources import mysql
from exporter.sources.base import QueryError, Rows
from exporter.spec.model import Database

pytestmark = pytest.mark.mysql


@pytest.fixture
def admin(mysql_dsn: str) -> Iterator[Any]:
    with contextlib.closing(mysql_connect(mysql_dsn)) as conn:
        yield conn


def run(conn: Any, sql: str, values: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    cursor.execute(sql, values)
    rows = cursor.fetchall() if cursor.description else []
    cursor.close()
    return list(rows)


def open_source(
    dsn: str, max_connections: int = 2, read_only: bool = True, pool_timeout: float = 2.0
) -> mysql.MysqlSource:
    database = Database(dsn=dsn, max_connections=max_connections, read_only=read_only)
    return mysql.MysqlSource("maria", dsn, database, pool_timeout)


@pytest.fixture
def db(mysql_database: tuple[str, str]) -> Iterator[tuple[mysql.MysqlSource, Any]]:
    """A source on a fresh database, and an admin connection to the same database."""
    dsn, name = mysql_database
    source = open_source(dsn)
    with contextlib.closing(mysql_connect(dsn, name)) as conn:
        try:
            yield source, conn
        finally:
            source.close()


def running(admin: Any, marker: str) -> list[tuple[int, float]]:
    """(connection id, seconds running) of the statements whose text holds `marker`."""
    rows = run(
        admin,
        "SELECT ID, TIME_MS / 1000 FROM information_schema.PROCESSLIST"
        " WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
        (f"%{marker}%",),
    )
    return [(int(i), float(t)) for i, t in rows]


def wait_running(admin: Any, marker: str, timeout: float = 10) -> list[tuple[int, float]]:
    """The running queries carrying `marker`, once there is one (an empty list after `timeout`)."""
    try:
        return wait_until(lambda: running(admin, marker), timeout, 0.05, what=marker)
    except AssertionError:
        return []


def connection_id(source: mysql.MysqlSource) -> int:
    return int(source.query("SELECT CONNECTION_ID() AS id", {}, 5).rows[0][0])


def test_types_and_utf8mb4(db: tuple[mysql.MysqlSource, Any]) -> None:
    source, conn = db
    run(
        conn,
        "CREATE TABLE t (amount DECIMAL(30,4), big BIGINT UNSIGNED, at DATETIME(6),"
        " ts TIMESTAMP(6) NULL, label VARCHAR(40)) CHARACTER SET utf8mb4",
    )
    run(conn, "SET time_zone = '+02:00'")  # the writer's zone: TIMESTAMP is stored as UTC
    run(
        conn,
        "INSERT INTO t VALUES (12345678901234567890.1234, 18446744073709551615,"
        " '2026-03-01 10:00:00.250000', '2026-03-01 12:00:00.5', 'café 😀 日本')",
    )
    rows = source.query("SELECT amount, big, at, ts, label FROM t", {}, 5)
    assert rows.columns == ("amount", "big", "at", "ts", "label")
    amount, big, at, ts, label = rows.rows[0]
    assert amount == Decimal("12345678901234567890.1234") and float(amount) > 1.2e19
    assert big == 2**64 - 1
    assert at == dt.datetime(2026, 3, 1, 10, 0, 0, 250000)
    assert ts == dt.datetime(2026, 3, 1, 10, 0, 0, 500000)  # read back in the UTC session
    assert label == "café 😀 日本"


def test_timestamp_cursor_binds_naive_aware_and_epoch(db: tuple[mysql.MysqlSource, Any]) -> None:
    source, conn = db
    run(conn, "CREATE TABLE ev (id INT PRIMARY KEY, at DATETIME(6), ts TIMESTAMP(6) NULL)")
    stamps = [dt.datetime(2026, 1, 1, 0, 0, s) for s in range(5)]
    for index, stamp in enumerate(stamps):
        run(conn, "INSERT INTO ev VALUES (?, ?, ?)", (index, stamp, stamp))
    query = "SELECT id FROM ev WHERE at > :cursor AND ts <= :settled ORDER BY id"
    eastern = dt.timezone(dt.timedelta(hours=-5))
    cases = [
        (stamps[1], stamps[3].replace(tzinfo=dt.UTC), [2, 3]),
        # the same instants with other zones: compared as UTC
        (
            stamps[1].replace(tzinfo=dt.UTC).astimezone(eastern),
            stamps[3].astimezone(eastern),
            [2, 3],
        ),
        ("1970-01-01 00:00:00", stamps[0].replace(tzinfo=dt.UTC), [0]),
    ]
    for cursor, settled, expected in cases:
        got = source.query(query, {"cursor": cursor, "settled": settled}, 5).rows
        assert [row[0] for row in got] == expected, (cursor, settled)
    epoch = stamps[2].replace(tzinfo=dt.UTC).timestamp()
    got = source.query("SELECT count(*) FROM ev WHERE at < FROM_UNIXTIME(:now)", {"now": epoch}, 5)
    assert got.rows[0][0] == 2


INJECTIONS = [
    "'; DROP TABLE victims; --",
    "\\'; DROP TABLE victims; -- ",
    "' OR '1'='1",
    "`; DROP TABLE victims; #",
    "%s",
    "%(now)s",
    "?",
    ":now",
    "*/ DROP TABLE victims; /*",
    "é' || (SELECT 'x') || '",
]


def test_parameters_are_bound_never_formatted(db: tuple[mysql.MysqlSource, Any]) -> None:
    source, conn = db
    run(conn, "CREATE TABLE victims (name VARCHAR(100) CHARACTER SET utf8mb4)")
    for needle in INJECTIONS:
        run(conn, "INSERT INTO victims VALUES (?)", (needle,))
    query = (
        "SELECT count(*) AS value, :needle AS echoed FROM victims WHERE name = :needle"
        " AND ':needle' <> '100%' -- :needle %s\n AND `name` IS NOT NULL # :needle"
    )
    for needle in INJECTIONS:
        rows = source.query(query, {"needle": needle}, 5).rows
        assert rows == [(1, needle)], needle
    assert run(conn, "SELECT count(*) FROM victims") == [(len(INJECTIONS),)]


WRITES = {
    "insert": "INSERT INTO victims VALUES (99)",
    "update": "UPDATE victims SET n = n + 1",
    "delete": "DELETE FROM victims",
    "create": "CREATE TABLE made_by_kpi (a INT)",
    "function": "SELECT writer() AS value",
    "sequence": "SELECT NEXTVAL(victims_seq) AS value",
    "multi": "COMMIT; INSERT INTO victims VALUES (7); SELECT 1 AS value",
    "replace": "REPLACE INTO victims VALUES (5)",
    "drop": "DROP TABLE victims",
    "user": "CREATE USER kpi_made_me",
}


def test_read_only_transactions_refuse_every_write(db: tuple[mysql.MysqlSource, Any]) -> None:
    """As root (every privilege), only the read-only transaction stands between a KPI's
    query and the data: each write fails with reason sql and nothing changes."""
    source, conn = db
    run(conn, "CREATE TABLE victims (n INT)")
    run(conn, "INSERT INTO victims VALUES (1), (2), (3)")
    run(conn, "CREATE SEQUENCE victims_seq")
    run(
        conn,
        "CREATE FUNCTION writer() RETURNS INT MODIFIES SQL DATA"
        " BEGIN INSERT INTO victims VALUES (42); RETURN 1; END",
    )
    for name, query in WRITES.items():
        # not a write itself: tries to switch the pooled session's later transactions to
        # read-write, where DDL (which commits the query's transaction implicitly) would run
        source.query("SET SESSION TRANSACTION READ WRITE", {}, 5)
        with pytest.raises(QueryError) as caught:
            source.query(query, {}, 5)
        assert caught.value.reason == "sql", (name, caught.value.message)
    assert sorted(run(conn, "SELECT n FROM victims")) == [(1,), (2,), (3,)]
    assert run(conn, "SHOW TABLES LIKE 'made_by_kpi'") == []
    assert run(conn, "SELECT count(*) FROM mysql.user WHERE user = 'kpi_made_me'") == [(0,)]
    assert run(conn, "SELECT NEXTVAL(victims_seq)") == [(1,)]  # never advanced by a KPI
    writer = open_source(source_dsn(source), read_only=False)
    writer.query("INSERT INTO victims VALUES (4)", {}, 5)  # read_only: false writes
    writer.close()
    assert run(conn, "SELECT count(*) FROM victims") == [(4,)]


def source_dsn(source: mysql.MysqlSource) -> str:
    arguments = source._arguments
    return f"mysql://{arguments['user']}@{arguments['host']}:{arguments['port']}/" + str(
        arguments["database"]
    )


def test_timeout_kills_the_query_on_the_server_and_reuses_the_connection(
    db: tuple[mysql.MysqlSource, Any], admin: Any
) -> None:
    source, _ = db
    marker = f"slow_{uuid.uuid4().hex[:8]}"
    before = connection_id(source)
    outcome: list[QueryError] = []

    def slow() -> None:
        try:
            source.query(f"SELECT SLEEP(30) AS `{marker}`", {}, 1.0)
        except QueryError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    seen = wait_running(admin, marker)
    thread.join(timeout=20)
    assert seen, "the slow query never showed in the processlist"
    assert not thread.is_alive() and outcome and outcome[0].reason == "timeout"
    assert running(admin, marker) == []  # nothing left running on the server
    assert connection_id(source) == before  # the server's own timeout: the session is reused


def test_kill_query_backstop_when_the_server_timeout_does_not_act(
    db: tuple[mysql.MysqlSource, Any], admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = db
    # as on a server that ignores the timeout variable: only the KILL QUERY timer is left
    monkeypatch.setattr(mysql, "timed_statements", lambda sql, *_: ([], sql))
    marker = f"stuck_{uuid.uuid4().hex[:8]}"
    before = connection_id(source)
    with pytest.raises(QueryError) as caught:
        source.query(f"SELECT SLEEP(30) AS `{marker}`", {}, 0.5)
    assert caught.value.reason == "timeout"
    assert running(admin, marker) == []
    assert before not in [i for i, _ in running(admin, "")]  # the killed session was closed
    assert connection_id(source) != before  # and a fresh one serves the next query


def test_cancel_running_kills_on_the_server(db: tuple[mysql.MysqlSource, Any], admin: Any) -> None:
    source, _ = db
    marker = f"shutdown_{uuid.uuid4().hex[:8]}"
    outcome: list[Rows | QueryError] = []

    def slow() -> None:
        try:
            outcome.append(source.query(f"SELECT SLEEP(30) AS `{marker}`", {}, 60))
        except QueryError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    assert wait_running(admin, marker), "the query never started"
    assert source.cancel_running() == 1
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert isinstance(outcome[0], QueryError) and outcome[0].reason == "timeout"
    assert running(admin, marker) == []
    assert source.cancel_running() == 0


def test_pool_bound(mysql_database: tuple[str, str], admin: Any) -> None:
    source = open_source(mysql_database[0], max_connections=1, pool_timeout=0.3)
    marker = f"hold_{uuid.uuid4().hex[:8]}"
    thread = threading.Thread(target=source.query, args=(f"SELECT SLEEP(2) AS `{marker}`", {}, 10))
    thread.start()
    try:
        assert wait_running(admin, marker)
        with pytest.raises(QueryError) as caught:
            source.query("SELECT 1", {}, 5)
        assert caught.value.reason == "pool"
    finally:
        thread.join(timeout=20)
    assert source.query("SELECT 1", {}, 5).rows == [(1,)]
    source.close()


def test_connection_errors_and_no_password_in_messages(mysql_dsn: str, admin: Any) -> None:
    password = f"pw-{uuid.uuid4().hex[:10]}"
    user = f"u_{uuid.uuid4().hex[:8]}"
    run(admin, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    try:
        port = mysql.connect_arguments(mysql_dsn)["port"]
        cases = {
            "closed port": f"mysql://{user}:{password}@127.0.0.1:{free_port()}/test",
            "wrong password": f"mysql://{user}:{password}x@127.0.0.1:{port}/test",
            "no such database": f"mysql://{user}:{password}@127.0.0.1:{port}/nope_{user}",
        }
        for what, dsn in cases.items():
            source = open_source(dsn)
            with pytest.raises(QueryError) as caught:
                source.query("SELECT 1", {}, 5)
            assert caught.value.reason == "connection", (what, caught.value.message)
            assert password not in caught.value.message, what
        denied = open_source(f"mysql://{user}:{password}@127.0.0.1:{port}/")
        with pytest.raises(QueryError) as caught:
            denied.query("SELECT count(*) FROM mysql.user", {}, 5)
        assert caught.value.reason == "sql" and password not in caught.value.message
        denied.close()
    finally:
        run(admin, f"DROP USER '{user}'@'%'")
