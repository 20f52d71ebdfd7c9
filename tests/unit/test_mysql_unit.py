"""MysqlSource without a server: DSN parsing, the :name rewrite, error reasons, and the MySQL 8
branch (max_execution_time), which cannot run here, through a fake driver connection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import extra

mariadb = extra("mariadb", "the mysql extra: pip install -e '.[mysql]', needs libmariadb-dev")

from exporter import demo  # noqa: E402
from exporter.sources import mysql  # noqa: E402
from exporter.sources.base import QueryError  # noqa: E402
from exporter.spec.model import Database  # noqa: E402
from exporter.spec.params import placeholders, to_qmark_mysql  # noqa: E402


class TestDsn:
    def test_every_part(self) -> None:
        arguments = mysql.connect_arguments(
            "mariadb://us%40er:p%3Ass%2Fw@db.example:3307/shop?ssl_ca=/ca.pem&ssl_verify_cert=true"
        )
        assert arguments == {
            "host": "db.example",
            "port": 3307,
            "user": "us@er",
            "password": "p:ss/w",
            "database": "shop",
            "ssl_ca": "/ca.pem",
            "ssl_verify_cert": True,
        }

    def test_defaults_and_socket(self) -> None:
        assert mysql.connect_arguments("mysql://root@/app?unix_socket=/run/mysqld/s.sock") == {
            "host": "localhost",
            "port": 3306,
            "user": "root",
            "database": "app",
            "unix_socket": "/run/mysqld/s.sock",
        }

    def test_unknown_option_is_named(self) -> None:
        with pytest.raises(QueryError) as caught:
            mysql.connect_arguments("mysql://root:hunter2@h/db?charset=latin1")
        assert caught.value.reason == "connection"
        assert "'charset'" in caught.value.message and "hunter2" not in caught.value.message

    def test_bad_port(self) -> None:
        with pytest.raises(QueryError, match="port is not a number"):
            mysql.connect_arguments("mysql://root@h:99999999999/db")


class TestPlaceholders:
    @pytest.mark.parametrize(
        ("query", "sql", "names"),
        [
            ("SELECT :a, :b, :a", "SELECT ?, ?, ?", ("a", "b", "a")),
            ("SELECT '100%' AS p WHERE x > :a", "SELECT '100%' AS p WHERE x > ?", ("a",)),
            ("SELECT `col:a` FROM t WHERE y = :b", "SELECT `col:a` FROM t WHERE y = ?", ("b",)),
            ("SELECT 1 # :a\n + :b", "SELECT 1 # :a\n + ?", ("b",)),
            ("SELECT 1 -- :a\n + :b", "SELECT 1 -- :a\n + ?", ("b",)),
            ("SELECT 1 --:a", "SELECT 1 --?", ("a",)),  # '--' without a space is no comment
            ("SELECT 'it\\'s :a' , :b", "SELECT 'it\\'s :a' , ?", ("b",)),
            ('SELECT "x"":a" , :b', 'SELECT "x"":a" , ?', ("b",)),
            ("SELECT /* :a */ :b", "SELECT /* :a */ ?", ("b",)),
            ("SELECT @v := :a", "SELECT @v := ?", ("a",)),
            ("SELECT '%%', '%s'", "SELECT '%%', '%s'", ()),
        ],
    )
    def test_rewrite(self, query: str, sql: str, names: tuple[str, ...]) -> None:
        assert to_qmark_mysql(query) == (sql, names)

    def test_names_found_are_names_the_spec_knows(self) -> None:
        query = "SELECT `a` FROM t WHERE x > :cursor AND y < :settled LIMIT :batch"
        assert set(to_qmark_mysql(query)[1]) <= placeholders(query)


MARIADB_10 = mysql.Flavour(True, "tx_read_only")
MYSQL_8 = mysql.Flavour(False, "transaction_read_only")


class TestPureParts:
    def test_flavour(self) -> None:
        assert mysql.flavour_of("10.11.19-MariaDB-0+deb12u1") == MARIADB_10
        assert mysql.flavour_of("5.5.5-10.6.4-MariaDB") == MARIADB_10
        assert mysql.flavour_of("11.4.2-MariaDB") == mysql.Flavour(True, "transaction_read_only")
        assert mysql.flavour_of("8.0.36") == MYSQL_8
        assert mysql.flavour_of("8.4.0-commercial") == MYSQL_8

    def test_timeouts(self) -> None:
        assert mysql.timed_statements("SELECT 1", 2.5, MARIADB_10, read_only=True) == (
            [],
            "SET STATEMENT max_statement_time=2.500, tx_read_only=1 FOR SELECT 1",
        )
        assert mysql.timed_statements("SELECT 1", 2.5, MARIADB_10, read_only=False) == (
            [],
            "SET STATEMENT max_statement_time=2.500 FOR SELECT 1",
        )
        assert mysql.timed_statements("SELECT 1", 2.5, MYSQL_8, read_only=True) == (
            ["SET SESSION max_execution_time=2500, transaction_read_only=1"],
            "SELECT 1",
        )
        assert mysql.timed_statements("SELECT 1", 2.5, MYSQL_8, read_only=False) == (
            ["SET SESSION max_execution_time=2500"],
            "SELECT 1",
        )
        # never 0, which would mean no limit at all
        before, _ = mysql.timed_statements("q", 0.0001, MYSQL_8, False)
        assert before == ["SET SESSION max_execution_time=1"]
        assert "max_statement_time=0.001 " in mysql.timed_statements("q", 0.0, MARIADB_10, False)[1]

    def test_bind_aware_datetimes_as_naive_utc(self) -> None:
        eastern = dt.timezone(dt.timedelta(hours=-5))
        assert mysql.bind(dt.datetime(2025, 12, 31, 23, 0, tzinfo=eastern)) == dt.datetime(
            2026, 1, 1, 4, 0
        )
        naive = dt.datetime(2026, 1, 1)
        assert mysql.bind(naive) is naive
        assert mysql.bind("x") == "x" and mysql.bind(5) == 5

    @pytest.mark.parametrize(
        ("errno", "cls", "reason"),
        [
            (1969, "OperationalError", "timeout"),
            (3024, "OperationalError", "timeout"),
            (1317, "OperationalError", "timeout"),
            (2002, "OperationalError", "connection"),
            (2013, "OperationalError", "connection"),
            (1045, "OperationalError", "connection"),
            (1049, "ProgrammingError", "connection"),
            (1064, "ProgrammingError", "sql"),
            (1146, "ProgrammingError", "sql"),
            (1792, "OperationalError", "sql"),  # write in a read-only transaction
            (None, "OperationalError", "connection"),
            (None, "ProgrammingError", "sql"),
        ],
    )
    def test_reasons(self, errno: int | None, cls: str, reason: str) -> None:
        exc = getattr(mariadb, cls)("message")
        exc.errno = errno
        assert mysql.reason_of(exc) == reason


# -- the whole query path on a fake driver -------------------------------------------------------


class FakeServer:
    """Statements every fake connection ran, in order; errors to raise by statement prefix."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.log: list[tuple[int, str, tuple[Any, ...]]] = []
        self.fail: dict[str, tuple[int, str]] = {}
        self.connections = 0

    def connect(self, **arguments: Any) -> FakeConnection:
        self.connections += 1
        return FakeConnection(self, self.connections)


class FakeConnection:
    def __init__(self, server: FakeServer, connection_id: int) -> None:
        self.server = server
        self.connection_id = connection_id
        self.server_info = server.version
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.description: Any = None

    def execute(self, sql: str, values: tuple[Any, ...] = ()) -> None:
        server = self.conn.server
        server.log.append((self.conn.connection_id, sql, values))
        for prefix, (errno, message) in server.fail.items():
            if sql.startswith(prefix):
                exc = mariadb.OperationalError(message)
                exc.errno = errno
                raise exc
        self.description = (("value",),) if sql.startswith("SELECT") else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [(1,)]

    def close(self) -> None:
        pass


PASSWORD = "s3cret-pw"


@pytest.fixture
def mysql8(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    server = FakeServer("8.0.36")
    monkeypatch.setattr(mysql.mariadb, "connect", server.connect)
    yield server


def source(read_only: bool = True) -> mysql.MysqlSource:
    dsn = f"mysql://u:{PASSWORD}@h/db"
    database = Database(dsn=dsn, max_connections=1, read_only=read_only)
    return mysql.MysqlSource("m", dsn, database, pool_timeout=1.0)


class TestMysql8Branch:
    def test_statements_in_order(self, mysql8: FakeServer) -> None:
        rows = source().query("SELECT x AS value FROM t WHERE y > :cursor", {"cursor": 3}, 1.5)
        assert rows.columns == ("value",) and list(rows.rows) == [(1,)]
        assert [(sql, values) for _, sql, values in mysql8.log] == [
            ("SET NAMES utf8mb4, time_zone = '+00:00'", ()),
            ("SET SESSION TRANSACTION READ ONLY", ()),
            ("SET SESSION max_execution_time=1500, transaction_read_only=1", ()),
            ("START TRANSACTION READ ONLY", ()),
            ("SELECT x AS value FROM t WHERE y > ?", (3,)),
            ("COMMIT", ()),
        ]

    def test_not_read_only(self, mysql8: FakeServer) -> None:
        source(read_only=False).query("SELECT 1", {}, 1)
        statements = [sql for _, sql, _ in mysql8.log]
        assert "SET SESSION TRANSACTION READ ONLY" not in statements
        assert statements[1:3] == ["SET SESSION max_execution_time=1000", "START TRANSACTION"]

    def test_server_timeout_is_a_timeout_and_the_connection_is_reused(
        self, mysql8: FakeServer
    ) -> None:
        db = source()
        mysql8.fail["SELECT SLEEP"] = (3024, "maximum statement execution time exceeded")
        with pytest.raises(QueryError) as caught:
            db.query("SELECT SLEEP(5)", {}, 1)
        assert caught.value.reason == "timeout"
        assert mysql8.log[-1][1] == "ROLLBACK"
        db.query("SELECT 1", {}, 1)
        assert {conn for conn, _, _ in mysql8.log} == {1}  # one connection all along

    def test_a_connection_dropped_while_idle_is_replaced_once(self, mysql8: FakeServer) -> None:
        db = source()
        db.query("SELECT 1", {}, 1)
        mysql8.fail["START TRANSACTION"] = (2006, "server has gone away")
        with pytest.raises(QueryError) as caught:
            db.query("SELECT 1", {}, 1)
        # the reused connection failed, a fresh one failed too: no third try, reason connection
        assert caught.value.reason == "connection"
        assert [c for c, sql, _ in mysql8.log if sql.startswith("START")] == [1, 1, 2]
        del mysql8.fail["START TRANSACTION"]
        db.query("SELECT 1", {}, 1)
        assert mysql8.connections == 3  # neither failed connection went back to the pool

    def test_sql_error_is_redacted(self, mysql8: FakeServer) -> None:
        mysql8.fail["SELECT"] = (1064, f"syntax error near '{PASSWORD}'")
        with pytest.raises(QueryError) as caught:
            source().query("SELECT 1", {}, 1)
        assert caught.value.reason == "sql" and caught.value.message == "syntax error near '***'"

    def test_missing_parameter(self, mysql8: FakeServer) -> None:
        with pytest.raises(QueryError, match="no value for :cursor"):
            source().query("SELECT 1 WHERE :cursor", {}, 1)
        assert mysql8.connections == 0

    def test_pool_bound(self, mysql8: FakeServer) -> None:
        db = source()
        assert db._slots.acquire(timeout=1)  # the only connection is busy
        with pytest.raises(QueryError) as caught:
            db.query("SELECT 1", {}, 1)
        assert caught.value.reason == "pool"


class MySql8Ddl:
    """A connection answering the demo's DDL as MySQL 8 does: no CREATE INDEX IF NOT EXISTS
    (error 1064), a duplicate index name refused (1061), information_schema listing indexes."""

    def __init__(self) -> None:
        self.indexes: list[str] = []
        self.rows: list[tuple[Any, ...]] = []

    def cursor(self) -> MySql8Ddl:
        return self

    def commit(self) -> None:
        pass

    def execute(self, sql: str) -> None:
        if sql.startswith("CREATE INDEX"):
            if sql.startswith("CREATE INDEX IF NOT EXISTS"):
                exc = mariadb.ProgrammingError("You have an error in your SQL syntax")
                exc.errno = 1064
                raise exc
            name = sql.split()[2]
            if name.lower() in (n.lower() for n in self.indexes):
                exc = mariadb.OperationalError(f"Duplicate key name '{name}'")
                exc.errno = 1061
                raise exc
            self.indexes.append(name)
        self.rows = [(n.upper(),) for n in self.indexes] if "information_schema" in sql else []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class TestDemoDdlOnMySql8:
    def test_missing_indexes_only_without_if_not_exists(self) -> None:
        statements = demo.index_statements(
            demo.demo_dialect("mysql"),
            ["users_created_at", "SESSIONS_LAST_SEEN", "queue_jobs_status", "PRIMARY"],
        )
        assert statements == [
            "CREATE INDEX sessions_user_last_seen ON sessions (user_id, last_seen)",
            "CREATE INDEX payments_created_at ON payments (created_at)",
            "CREATE INDEX generations_created_at ON generations (created_at)",
            "CREATE INDEX token_usage_created_at ON token_usage (created_at)",
            "CREATE INDEX queue_jobs_finished_at_id ON queue_jobs (finished_at, id)",
            "CREATE INDEX queue_jobs_created_at ON queue_jobs (created_at)",
            "CREATE INDEX http_requests_created_at ON http_requests (created_at)",
            "CREATE INDEX errors_created_at ON errors (created_at)",
            "CREATE INDEX feature_events_created_at ON feature_events (created_at)",
        ]

    def test_create_schema_twice(self) -> None:
        conn = MySql8Ddl()
        demo.create_schema(conn, "mysql")
        demo.create_schema(conn, "mysql")
        assert len(conn.indexes) == 12 and len(set(conn.indexes)) == 12
