"""MysqlSource: MySQL and MariaDB through MariaDB Connector/Python (the `mariadb` package).

Per database a bounded pool of connections (`max_connections`), each set up once with the
session time zone UTC, utf8mb4 and (read_only) read-only transactions by default. Every query
runs in its own `START TRANSACTION [READ ONLY]` with a server-side timeout, and a timer kills
it on the server with `KILL QUERY` from another connection when the server's own timeout did
not stop it (the backstop, as postgres.py's client-side cancel).

Where MySQL and MariaDB differ (told apart by the server's version string at connect):
- timeout and statement-level read-only: MariaDB prefixes the query with `SET STATEMENT
  max_statement_time=<s>, tx_read_only=1 FOR`, which no earlier query of the session can
  change; MySQL 8 has no such prefix for variables, so `SET SESSION max_execution_time=<ms>,
  transaction_read_only=1` runs just before the query's transaction starts.
- errors: a timed-out query fails with 1969 on MariaDB, 3024 on MySQL; a killed one with 1317.
`START TRANSACTION READ ONLY` and `SET SESSION TRANSACTION READ ONLY` read the same on both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import mariadb

from exporter.sources.base import (
    DemoDialect,
    Guarantees,
    QueryError,
    Reason,
    Rows,
    RunningQueries,
    dsn_secrets,
    redact,
)
from exporter.spec.model import Database
from exporter.spec.params import ParamStyle, to_qmark_mysql

_to_qmark = lru_cache(maxsize=4096)(to_qmark_mysql)

_KILL_GRACE = 1.0  # after the server-side timeout, KILL QUERY from another connection too
SCHEMES = ("mysql", "mariadb")
# DSN query parameters passed to the driver as they are (TLS and the socket); others refused.
DSN_OPTIONS = (
    "unix_socket",
    "ssl",
    "ssl_ca",
    "ssl_capath",
    "ssl_cert",
    "ssl_key",
    "ssl_cipher",
    "ssl_crlpath",
    "ssl_verify_cert",
    "tls_version",
)
_FLAGS = ("ssl", "ssl_verify_cert")

# Server error numbers, by the reason they are published under.
TIMEOUT_ERRORS = frozenset(
    {
        1317,  # ER_QUERY_INTERRUPTED: KILL QUERY (our backstop or shutdown)
        1969,  # ER_STATEMENT_TIMEOUT: MariaDB max_statement_time
        3024,  # ER_QUERY_TIMEOUT: MySQL max_execution_time
    }
)
CONNECTION_ERRORS = frozenset(
    {
        1040,  # too many connections
        1044,  # access denied to the database
        1045,  # access denied (password)
        1049,  # unknown database
        1129,  # host blocked
        1130,  # host not allowed
        1152,  # aborted connection
        1251,  # authentication protocol not supported
        1698,  # access denied (auth plugin)
        1927,  # connection killed (MariaDB)
        4031,  # disconnected by the server for inactivity (MySQL)
    }
)
_CLIENT_ERRORS = range(2000, 3000)  # the client library's own: cannot connect, server gone, …


def connect_arguments(dsn: str) -> dict[str, Any]:
    """Driver keyword arguments from `mysql://user:password@host:port/database?options`."""
    url = urlsplit(dsn)
    if url.scheme not in SCHEMES:
        raise QueryError("connection", "a MySQL DSN starts with mysql:// or mariadb://")
    try:
        port = url.port or 3306
    except ValueError:
        raise QueryError("connection", "the DSN's port is not a number") from None
    arguments: dict[str, Any] = {"host": url.hostname or "localhost", "port": port}
    if url.username:
        arguments["user"] = unquote(url.username)
    if url.password is not None:
        arguments["password"] = unquote(url.password)
    database = unquote(url.path.lstrip("/"))
    if database:
        arguments["database"] = database
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        if key not in DSN_OPTIONS:
            raise QueryError(
                "connection",
                f"unknown MySQL DSN parameter {key!r} (known: {', '.join(DSN_OPTIONS)})",
            )
        arguments[key] = value.lower() in ("1", "true", "yes", "on") if key in _FLAGS else value
    return arguments


@dataclass(frozen=True)
class Flavour:
    """What differs between the servers: MariaDB or MySQL, and its read-only variable's name."""

    mariadb: bool
    read_only_variable: str  # tx_read_only: MariaDB before 11.1; transaction_read_only after


def flavour_of(server_info: str) -> Flavour:
    """From the server's version string: '10.11.19-MariaDB-0+deb12u1', '8.0.36'."""
    if "mariadb" not in server_info.lower():
        return Flavour(False, "transaction_read_only")
    version = re.match(r"(?:5\.5\.5-)?(\d+)\.(\d+)", server_info)
    major_minor = (int(version.group(1)), int(version.group(2))) if version else (0, 0)
    return Flavour(True, "transaction_read_only" if major_minor >= (11, 1) else "tx_read_only")


def timed_statements(
    sql: str, timeout: float, flavour: Flavour, read_only: bool
) -> tuple[list[str], str]:
    """Statements to run before the query, and the query itself, bounded by `timeout` seconds
    on the server. Read-only is set for the statement too: a DDL statement commits the
    query's transaction implicitly and runs outside it, read-only only if the session is,
    and an earlier query may have switched the session back to read-write."""
    read_only_setting = f", {flavour.read_only_variable}=1" if read_only else ""
    if flavour.mariadb:
        seconds = max(timeout, 0.001)  # 0 would mean no limit
        return [], f"SET STATEMENT max_statement_time={seconds:.3f}{read_only_setting} FOR {sql}"
    milliseconds = max(1, math.ceil(timeout * 1000))
    return [f"SET SESSION max_execution_time={milliseconds}{read_only_setting}"], sql


def session_statements(read_only: bool) -> list[str]:
    """Run once per connection: UTC, so TIMESTAMP columns and NOW() read as UTC; utf8mb4."""
    statements = ["SET NAMES utf8mb4, time_zone = '+00:00'"]
    if read_only:
        statements.append("SET SESSION TRANSACTION READ ONLY")
    return statements


def begin_statement(read_only: bool) -> str:
    # Read-only per transaction too: a query that switched its session back to read-write
    # (SET SESSION TRANSACTION READ WRITE) cannot open the next poll's writes.
    return "START TRANSACTION READ ONLY" if read_only else "START TRANSACTION"


def bind(value: Any) -> Any:
    """A parameter as the driver should see it: the driver drops a datetime's zone, so an
    aware one becomes the naive UTC time that the UTC session compares with."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def reason_of(exc: BaseException) -> Reason:
    """The published reason for a driver error, from its server or client error number."""
    errno = getattr(exc, "errno", None)
    if errno in TIMEOUT_ERRORS:
        return "timeout"
    if errno in CONNECTION_ERRORS or errno in _CLIENT_ERRORS:
        return "connection"
    if errno is None and isinstance(exc, mariadb.InterfaceError | mariadb.OperationalError):
        return "connection"  # raised by the driver before any server answered
    return "sql"


@dataclass(eq=False)
class _Connection:
    """A pooled connection; `running` and `killed` change only under `lock`."""

    raw: Any
    thread_id: int
    flavour: Flavour
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: bool = False
    killed: bool = False


class MysqlSource:
    """A MySQL or MariaDB database behind one bounded pool of connections."""

    guarantees: ClassVar = Guarantees(
        server_timeout=True, cancel=True, read_only=True, bound_parameters=True
    )
    paramstyle: ClassVar[ParamStyle] = "qmark"
    # InnoDB indexes no TEXT column without a prefix length: the demo's strings are VARCHAR.
    # MySQL 8 has no CREATE INDEX IF NOT EXISTS (MariaDB has): the demo asks which exist.
    demo: ClassVar = DemoDialect(
        identity="BIGINT AUTO_INCREMENT PRIMARY KEY",
        placeholder="?",
        text="VARCHAR(255)",
        index_names="SELECT DISTINCT index_name FROM information_schema.statistics"
        " WHERE table_schema = DATABASE()",
    )

    def __init__(self, name: str, dsn: str, database: Database, pool_timeout: float) -> None:
        self.name = name
        self.pool_timeout = pool_timeout
        self.read_only = database.read_only
        self.connect_timeout = database.connect_timeout
        self._secrets = dsn_secrets(dsn)
        self._arguments = connect_arguments(dsn)
        self._slots = threading.BoundedSemaphore(database.max_connections)
        self._idle: list[_Connection] = []
        self._running: RunningQueries[_Connection] = RunningQueries(self._kill)
        self._lock = threading.Lock()  # guards _idle and _closed
        self._closed = False

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Any:
        return mariadb.connect(
            **self._arguments,
            connect_timeout=max(1, math.ceil(self.connect_timeout)),
            autocommit=True,
        )

    def _open(self) -> _Connection:
        raw = self._connect()
        try:
            cursor = raw.cursor()
            for statement in session_statements(self.read_only):
                cursor.execute(statement)
            cursor.close()
        except mariadb.Error:
            with contextlib.suppress(mariadb.Error):
                raw.close()
            raise
        return _Connection(raw, int(raw.connection_id), flavour_of(raw.server_info))

    def _checkout(self) -> tuple[_Connection, bool]:
        """An idle connection (reused: True) or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._open(), False

    def _checkin(self, conn: _Connection, keep: bool) -> None:
        with self._lock:
            if keep and not self._closed:
                self._idle.append(conn)
                return
        with contextlib.suppress(mariadb.Error):
            conn.raw.close()

    # -- queries -----------------------------------------------------------------------------

    def _clean(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return redact(text, self._secrets)

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        statement, names = _to_qmark(sql)
        missing = [name for name in names if name not in params]
        if missing:
            raise QueryError("sql", f"no value for :{missing[0]}")
        values = tuple(bind(params[name]) for name in names)
        if not self._slots.acquire(timeout=self.pool_timeout):
            raise QueryError(
                "pool", f"no free connection within {self.pool_timeout:g}s (max_connections)"
            )
        try:
            return self._query(statement, values, timeout)
        finally:
            self._slots.release()

    def _query(self, sql: str, values: tuple[Any, ...], timeout: float) -> Rows:
        try:
            conn, reused = self._checkout()
        except mariadb.Error as exc:
            raise QueryError(reason_of(exc), self._clean(exc)) from None
        keep = False
        before, statement = timed_statements(sql, timeout, conn.flavour, self.read_only)
        try:
            conn = self._begin(conn, reused, before)
            rows = self._run(conn, statement, values, timeout)
            conn.raw.cursor().execute("COMMIT")
            keep = not conn.killed
            return rows
        except mariadb.Error as exc:
            if conn.killed:  # whatever the driver said, the backstop stopped it
                raise QueryError("timeout", f"query exceeded its {timeout:g}s timeout") from None
            reason = reason_of(exc)
            keep = reason != "connection" and self._rollback(conn)
            if reason == "timeout":
                raise QueryError("timeout", f"query exceeded its {timeout:g}s timeout") from None
            raise QueryError(reason, self._clean(exc)) from None
        finally:
            self._checkin(conn, keep)

    def _begin(self, conn: _Connection, reused: bool, before: list[str]) -> _Connection:
        """Apply the query's session settings (MySQL: its timeout), then open its transaction,
        so no setting changes inside it; a reused connection that the server dropped while it
        was idle is replaced once (nothing ran on it yet, so nothing runs twice)."""
        statements = [*before, begin_statement(self.read_only)]
        try:
            self._execute_all(conn, statements)
            return conn
        except mariadb.Error as exc:
            if not reused or reason_of(exc) != "connection":
                raise
        with contextlib.suppress(mariadb.Error):
            conn.raw.close()
        conn = self._open()
        self._execute_all(conn, statements)
        return conn

    @staticmethod
    def _execute_all(conn: _Connection, statements: list[str]) -> None:
        cursor = conn.raw.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()

    def _rollback(self, conn: _Connection) -> bool:
        try:
            conn.raw.cursor().execute("ROLLBACK")
        except mariadb.Error:
            return False
        return True

    def _run(
        self, conn: _Connection, statement: str, values: tuple[Any, ...], timeout: float
    ) -> Rows:
        cursor = conn.raw.cursor()
        guard = threading.Timer(timeout + _KILL_GRACE, self._kill, (conn,))
        guard.daemon = True
        with conn.lock:
            conn.running = True
        started = time.monotonic()
        guard.start()
        try:
            with self._running.track(conn):
                cursor.execute(statement, values)
                columns = tuple(d[0] for d in cursor.description or ())
                rows: Sequence[tuple[Any, ...]] = cursor.fetchall() if cursor.description else []
        finally:
            guard.cancel()
            with conn.lock:
                conn.running = False
        elapsed = time.monotonic() - started
        cursor.close()
        if conn.killed:  # killed after its last row: its result may still be cut short
            raise QueryError("timeout", f"query exceeded its {timeout:g}s timeout")
        return Rows(columns, rows, elapsed)

    def _kill(self, conn: _Connection) -> None:
        """KILL QUERY on the server from another connection, if `conn` is still running.
        A killed connection is closed, never reused: the kill may land after the query."""
        with conn.lock:
            if not conn.running or conn.killed:
                return
            conn.killed = True
            with contextlib.suppress(mariadb.Error):
                killer = self._connect()
                try:
                    killer.cursor().execute("KILL QUERY ?", (conn.thread_id,))
                finally:
                    killer.close()

    def cancel_running(self) -> int:
        """Kill every query running now, on the server (shutdown after its grace period)."""
        return self._running.cancel_all()

    def close(self) -> None:
        """Close the idle connections; those in use close when their query ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(mariadb.Error):
                conn.raw.close()
