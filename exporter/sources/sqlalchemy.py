"""SqlalchemySource: any SQLAlchemy dialect (`sqlalchemy+DIALECT[+DRIVER]://…`), for the engines
without a native backend. What holds depends on the dialect and driver; both tables below are
the only place that says so (the README's engine table repeats them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, cast

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from exporter.sources.base import (
    APPLICATION_NAME,
    DemoDialect,
    Guarantees,
    QueryError,
    Rows,
    RunningQueries,
    dsn_secrets,
    redact,
)
from exporter.sources.running import Watchdog
from exporter.spec.model import Database
from exporter.spec.params import ParamStyle, to_paramstyle

PREFIX = "sqlalchemy+"
_CANCEL_GRACE = 1.0  # after a server-side timeout, cancel from the client too

Cancel = Callable[[], object]


@dataclass(frozen=True)
class DialectSupport:
    """What a dialect offers beyond plain queries."""

    read_only: str | None = None  # run first in each transaction, makes it read-only
    session_read_only: str | None = None  # run on each new connection: later ones default to it
    server_timeout: str | None = None  # run next, binds :timeout_ms, the server stops the query
    connect_args: Mapping[str, Any] = field(default_factory=dict)
    connect_timeout: str | None = None  # the driver's connect argument, in seconds


_MYSQL = DialectSupport(
    read_only="START TRANSACTION READ ONLY",
    session_read_only="SET SESSION TRANSACTION READ ONLY",
    connect_timeout="connect_timeout",
)
DIALECTS: dict[str, DialectSupport] = {
    "postgresql": DialectSupport(
        read_only="SET TRANSACTION READ ONLY",
        # psycopg sends a query without parameters as a simple query, where "COMMIT; INSERT …"
        # would leave the read-only transaction: the next one is read-only too
        session_read_only="SET default_transaction_read_only = on",
        server_timeout="SELECT set_config('statement_timeout', :timeout_ms, true)",
        connect_args={"application_name": APPLICATION_NAME},
        connect_timeout="connect_timeout",
    ),
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
    "sqlite": DialectSupport(
        read_only="PRAGMA query_only = ON",
        session_read_only="PRAGMA query_only = ON",
        connect_timeout="timeout",
    ),
}


# by the driver's paramstyle: the thread id is bound like any value
_KILL_QUERY = {"qmark": "KILL QUERY ?", "format": "KILL QUERY %s", "pyformat": "KILL QUERY %s"}


def _kill_query(engine: Engine, connect_args: Mapping[str, Any], thread_id: int) -> None:
    """MySQL/MariaDB: stop a connection's query from a second connection, outside the pool."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    killer = engine.dialect.connect(*cargs, **{**cparams, **connect_args})
    try:
        cursor = killer.cursor()
        cursor.execute(_KILL_QUERY[engine.dialect.paramstyle], (thread_id,))
    finally:
        killer.close()


# How each DBAPI driver stops a running query: (engine, connect args, DBAPI connection) -> cancel
CANCELS: dict[str, Callable[[Engine, Mapping[str, Any], Any], Cancel]] = {
    "psycopg": lambda engine, args, conn: lambda: conn.cancel_safe(timeout=5.0),
    "psycopg2": lambda engine, args, conn: conn.cancel,
    "pysqlite": lambda engine, args, conn: conn.interrupt,
    "pymysql": lambda engine, args, conn: lambda: _kill_query(engine, args, conn.thread_id()),
    "mysqldb": lambda engine, args, conn: lambda: _kill_query(engine, args, conn.thread_id()),
    "mariadbconnector": lambda engine, args, conn: (
        lambda: _kill_query(engine, args, conn.thread_id)
    ),
}


class _Stop:
    """One query's cancel, remembering that it was asked for (by the watchdog or shutdown)."""

    def __init__(self, cancel: Cancel | None) -> None:
        self.cancel = cancel
        self.asked = False

    def __call__(self) -> None:
        self.asked = True
        if self.cancel is not None:
            self.cancel()


@lru_cache(maxsize=4096)
def _text(sql: str) -> sqlalchemy.TextClause:
    return sqlalchemy.text(to_paramstyle(sql, SqlalchemySource.paramstyle))


class SqlalchemySource:
    """A database behind a SQLAlchemy engine with a bounded QueuePool (max_connections)."""

    # The class states what holds for every dialect: a read-only database is either enforced
    # by the dialect (DIALECTS) or refused at open. Timeouts are kept by the client (a watchdog);
    # where the timeout is kept by the server too, and which drivers can cancel, is per dialect.
    guarantees: ClassVar = Guarantees(
        server_timeout=False, cancel=False, read_only=True, bound_parameters=True
    )
    paramstyle: ClassVar[ParamStyle] = "sqlalchemy"
    demo: ClassVar[DemoDialect | None] = None  # the demo runs on the native backends

    def __init__(self, name: str, dsn: str, database: Database, pool_timeout: float) -> None:
        self.name = name
        self.read_only = database.read_only
        self.pool_timeout = pool_timeout
        self._secrets = dsn_secrets(dsn)
        url = self._url(dsn)
        self._secrets.append(url.password or "")
        try:
            url.get_dialect()
        except sa_exc.NoSuchModuleError:
            raise QueryError(
                "connection",
                f"database {name}: SQLAlchemy has no dialect {url.drivername!r} "
                "(a typo, or the package providing it is not installed)",
            ) from None
        self.dialect = url.get_backend_name()
        self.support = DIALECTS.get(self.dialect, DialectSupport())
        if self.read_only and self.support.read_only is None:
            raise QueryError(
                "connection",
                f"database {name}: the {self.dialect} dialect has no read-only transactions "
                "here; set read_only: false and connect as a user that cannot write",
            )
        self._connect_args = dict(self.support.connect_args)
        if self.support.connect_timeout:
            seconds = max(1, round(database.connect_timeout))
            self._connect_args[self.support.connect_timeout] = seconds
        try:
            self.engine = sqlalchemy.create_engine(
                url,
                poolclass=QueuePool,
                pool_size=database.max_connections,
                max_overflow=0,
                pool_timeout=pool_timeout,
                pool_pre_ping=True,
                connect_args=self._connect_args,
            )
        except (sa_exc.SQLAlchemyError, ImportError) as exc:
            raise QueryError("connection", f"database {name}: {self._clean(exc)}") from None
        if self.read_only and self.support.session_read_only:
            sqlalchemy.event.listen(self.engine, "connect", self._read_only_session)
        self._make_cancel = CANCELS.get(self.engine.dialect.driver)
        self._running: RunningQueries[_Stop] = RunningQueries(_Stop.__call__)

    def _read_only_session(self, dbapi_conn: Any, record: Any) -> None:
        assert self.support.session_read_only is not None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(self.support.session_read_only)
        finally:
            cursor.close()
        dbapi_conn.commit()  # the pool's rollback on return would undo it otherwise

    def _url(self, dsn: str) -> sqlalchemy.URL:
        try:
            return sqlalchemy.make_url(dsn.removeprefix(PREFIX))
        except sa_exc.ArgumentError:
            raise QueryError(
                "connection",
                f"database {self.name}: not a SQLAlchemy URL after {PREFIX!r} "
                "(e.g. sqlalchemy+mssql+pyodbc://user:password@host/db?driver=…)",
            ) from None

    def _clean(self, exc: BaseException) -> str:
        """The driver's own message, first line, without passwords (never SQLAlchemy's
        wrapper text, which repeats the statement and its parameters)."""
        orig = getattr(exc, "orig", None) or exc
        text = str(orig).strip()
        return redact(text.splitlines()[0] if text else type(orig).__name__, self._secrets)

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        try:
            conn = self.engine.connect()
        except sa_exc.TimeoutError:
            raise QueryError(
                "pool", f"no free connection within {self.pool_timeout:g}s (max_connections)"
            ) from None
        except (sa_exc.SQLAlchemyError, ImportError) as exc:
            raise QueryError("connection", self._clean(exc)) from None
        with conn:
            return self._run(conn, sql, params, timeout)

    def _run(self, conn: Connection, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        make_cancel = self._make_cancel
        dbapi_conn = conn.connection.dbapi_connection
        stop = _Stop(
            make_cancel(self.engine, self._connect_args, dbapi_conn) if make_cancel else None
        )
        # without a driver cancel the watchdog only marks the query late: the timeout is ours
        watchdog = Watchdog(timeout + (_CANCEL_GRACE if self.support.server_timeout else 0.0), stop)
        started = time.monotonic()
        try:
            with conn.begin():
                self._begin(conn, timeout)
                with self._running.track(stop), watchdog:
                    result = conn.execute(_text(sql), dict(params))
                    columns = tuple(result.keys()) if result.returns_rows else ()
                    # SQLAlchemy's Row is a tuple-like sequence (indexing, len, iteration):
                    # copying 10k of them into tuples doubled the fetch
                    rows = cast(Sequence[tuple[Any, ...]], result.fetchall()) if columns else []
        except sa_exc.DBAPIError as exc:
            if stop.asked or time.monotonic() - started >= timeout:
                raise self._stopped(stop, watchdog, timeout) from None
            if exc.connection_invalidated:
                raise QueryError("connection", self._clean(exc)) from None
            raise QueryError("sql", self._clean(exc)) from None
        except sa_exc.SQLAlchemyError as exc:
            raise QueryError("sql", self._clean(exc)) from None
        if stop.asked:  # an answer after the cancel (MariaDB's killed SLEEP returns 1)
            raise self._stopped(stop, watchdog, timeout)
        return Rows(columns, rows, time.monotonic() - started)

    def _begin(self, conn: Connection, timeout: float) -> None:
        """The dialect's read-only and server-side timeout statements, first in the transaction."""
        if self.read_only and self.support.read_only:
            conn.execute(sqlalchemy.text(self.support.read_only))
        if self.support.server_timeout:
            milliseconds = str(max(1, int(timeout * 1000)))
            conn.execute(sqlalchemy.text(self.support.server_timeout), {"timeout_ms": milliseconds})

    @staticmethod
    def _stopped(stop: _Stop, watchdog: Watchdog, timeout: float) -> QueryError:
        if stop.asked and not watchdog.fired:
            return QueryError("timeout", "query cancelled at shutdown")
        return QueryError("timeout", f"query exceeded its {timeout:g}s timeout")

    def cancel_running(self) -> int:
        """Cancel the queries running now where the driver can (shutdown after its grace)."""
        return self._running.cancel_all()

    def close(self) -> None:
        self.engine.dispose()
