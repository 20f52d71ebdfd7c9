"""SqliteSource: read-only SQLite queries, each bounded by a deadline inside SQLite."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from exporter.sources.base import DemoDialect, Guarantees, QueryError, Rows, RunningQueries
from exporter.sources.running import QuerySlots
from exporter.spec.model import Database
from exporter.spec.params import ParamStyle, to_paramstyle

_PROGRESS_STEPS = 5_000  # VM instructions between deadline checks


def file_path(dsn: str) -> Path:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` DSN (or `duckdb:`)."""
    rest = dsn.partition(":")[2]
    rest = rest.removeprefix("//")
    if rest.startswith("/") and not rest.startswith("//"):
        rest = rest[1:]  # sqlite:///x.db -> x.db ; sqlite:////abs -> /abs
    elif rest.startswith("//"):
        rest = rest[1:]
    path = unquote(rest.split("?", 1)[0])
    if not path:
        raise QueryError("connection", f"{dsn.partition(':')[0]} DSN has no file path")
    return Path(path)


class SqliteSource:
    """A SQLite file; slots bound concurrent queries like a pool would."""

    # the deadline is checked by SQLite's own VM (progress handler): it stops the query itself
    guarantees: ClassVar = Guarantees(
        server_timeout=True, cancel=True, read_only=True, bound_parameters=True
    )
    paramstyle: ClassVar[ParamStyle] = "named"
    demo: ClassVar = DemoDialect(identity="INTEGER PRIMARY KEY", placeholder="?")

    def __init__(self, name: str, dsn: str, database: Database, pool_timeout: float) -> None:
        self.name = name
        self.path = file_path(dsn)
        self.read_only = database.read_only
        self.connect_timeout = database.connect_timeout
        self.slots = QuerySlots(database.max_connections, pool_timeout)
        self._running: RunningQueries[sqlite3.Connection] = RunningQueries(
            sqlite3.Connection.interrupt
        )

    def _connect(self) -> sqlite3.Connection:
        mode = "ro" if self.read_only else "rw"
        uri = f"file:{quote(str(self.path))}?mode={mode}"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=self.connect_timeout, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise QueryError("connection", f"cannot open {self.path}: {exc}") from None
        if self.read_only:
            conn.execute("PRAGMA query_only = ON")
        return conn

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        with self.slots.slot():
            conn = self._connect()
            try:
                started = time.monotonic()
                deadline = started + timeout
                conn.set_progress_handler(
                    lambda: 1 if time.monotonic() > deadline else 0, _PROGRESS_STEPS
                )
                with self._running.track(conn):
                    cursor = conn.execute(to_paramstyle(sql, self.paramstyle), dict(params))
                    columns = tuple(d[0] for d in cursor.description or ())
                    rows = cursor.fetchall()
                return Rows(columns, rows, time.monotonic() - started)
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if "interrupted" in text:
                    raise QueryError(
                        "timeout", f"query exceeded its {timeout:g}s timeout"
                    ) from None
                if "locked" in text or "busy" in text:
                    raise QueryError("timeout", f"database is locked: {text}") from None
                if "unable to open" in text or "disk I/O" in text:
                    raise QueryError("connection", text) from None
                raise QueryError("sql", text) from None
            except sqlite3.DatabaseError as exc:
                text = str(exc)
                if "not a database" in text:
                    raise QueryError("connection", text) from None
                raise QueryError("sql", text) from None
            except (sqlite3.Warning, ValueError, OverflowError) as exc:
                raise QueryError("sql", str(exc)) from None
            finally:
                conn.close()

    def cancel_running(self) -> int:
        """Interrupt every query running now (shutdown after its grace period)."""
        return self._running.cancel_all()

    def close(self) -> None:
        """Nothing stays open between queries."""
