"""DuckdbSource: a DuckDB file opened read-only for each query, interrupted at its timeout."""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar

import duckdb

from exporter.sources.base import DemoDialect, Guarantees, QueryError, Rows, RunningQueries
from exporter.sources.running import QuerySlots, Watchdog
from exporter.sources.sqlite import file_path
from exporter.spec.model import Database
from exporter.spec.params import ParamStyle, placeholders, to_paramstyle


@lru_cache(maxsize=4096)
def _prepared(sql: str) -> tuple[str, frozenset[str]]:
    """The query with `$name` parameters, and their names (DuckDB refuses unused ones)."""
    return to_paramstyle(sql, DuckdbSource.paramstyle), frozenset(placeholders(sql))


class DuckdbSource:
    """A DuckDB file. It is open only while queries run: DuckDB lets one process write a file
    or any number read it, so a file held open between polls would lock out the team's ETL.
    Slots bound concurrent queries like a pool would."""

    # embedded: the watchdog's interrupt stops the query inside the engine, nothing runs on
    guarantees: ClassVar = Guarantees(
        server_timeout=True, cancel=True, read_only=True, bound_parameters=True
    )
    paramstyle: ClassVar[ParamStyle] = "dollar"
    demo: ClassVar[DemoDialect | None] = None  # no identity columns without a sequence

    def __init__(self, name: str, dsn: str, database: Database, pool_timeout: float) -> None:
        self.name = name
        self.path = file_path(dsn)
        self.read_only = database.read_only
        self.slots = QuerySlots(database.max_connections, pool_timeout)
        self._running: RunningQueries[duckdb.DuckDBPyConnection] = RunningQueries(
            duckdb.DuckDBPyConnection.interrupt
        )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(self.path), read_only=self.read_only)
        except duckdb.Error as exc:
            raise QueryError("connection", f"cannot open {self.path}: {_first_line(exc)}") from None

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        with self.slots.slot():
            conn = self._connect()
            try:
                return self._run(conn, sql, params, timeout)
            finally:
                conn.close()

    def _run(
        self, conn: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any], timeout: float
    ) -> Rows:
        statement, names = _prepared(sql)
        bound = {name: value for name, value in params.items() if name in names}
        watchdog = Watchdog(timeout, conn.interrupt)
        started = time.monotonic()
        try:
            with self._running.track(conn), watchdog:
                cursor = conn.execute(statement, bound)
                columns = tuple(d[0] for d in cursor.description or ())
                rows = cursor.fetchall()
        except duckdb.InterruptException:
            if watchdog.fired:
                raise QueryError("timeout", f"query exceeded its {timeout:g}s timeout") from None
            raise QueryError("timeout", "query cancelled at shutdown") from None
        except duckdb.Error as exc:
            raise QueryError("sql", _first_line(exc)) from None
        except (TypeError, ValueError, OverflowError) as exc:  # a value DuckDB cannot bind
            raise QueryError("sql", _first_line(exc)) from None
        return Rows(columns, rows, time.monotonic() - started)

    def cancel_running(self) -> int:
        """Interrupt every query running now (shutdown after its grace period)."""
        return self._running.cancel_all()

    def close(self) -> None:
        """Nothing stays open between queries."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
