"""PostgresSource: a psycopg-pool per database, read-only sessions, server-side timeouts."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from exporter.sources.base import APPLICATION_NAME, QueryError, Rows, dsn_secrets, redact
from exporter.spec.model import Database
from exporter.spec.params import to_pyformat

_pyformat = lru_cache(maxsize=4096)(to_pyformat)

# The pool logs its own connection retries; our poll logs carry the context instead.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

_BEGIN = "SELECT set_config('statement_timeout', %s, true)"
_BEGIN_READ_ONLY = _BEGIN + ", set_config('transaction_read_only', 'on', true)"
_CANCEL_GRACE = 1.0  # after the server-side timeout, cancel from the client too


class PostgresSource:
    """A PostgreSQL database behind one bounded psycopg-pool."""

    dialect = "postgresql"

    def __init__(self, name: str, dsn: str, database: Database, pool_timeout: float) -> None:
        self.name = name
        self.pool_timeout = pool_timeout
        self.read_only = database.read_only
        self._secrets = dsn_secrets(dsn)
        self._connect_error: str | None = None
        self._running: set[psycopg.Connection[Any]] = set()  # connections inside a query
        self._running_lock = threading.Lock()
        source = self

        class _Connection(psycopg.Connection):
            """Records why the last connection attempt failed, so waits are told apart."""

            @classmethod
            def connect(cls, *args: Any, **kwargs: Any) -> Any:
                try:
                    conn = super().connect(*args, **kwargs)
                except psycopg.Error as exc:
                    source._connect_error = source._clean(exc)
                    raise
                source._connect_error = None
                return conn

        # keyword arguments replace the DSN's own `options` (e.g. a search_path): extend them
        try:
            options = str(conninfo_to_dict(dsn).get("options") or "")
        except psycopg.Error:
            options = ""  # a malformed DSN fails at connect, with a redacted message
        if database.read_only:
            options = f"{options} -c default_transaction_read_only=on".strip()
        self.pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            connection_class=_Connection,
            min_size=0,
            max_size=database.max_connections,
            open=False,
            name=f"kpi-exporter-{name}",
            timeout=pool_timeout,
            reconnect_timeout=max(10.0, 2 * database.connect_timeout),
            max_idle=300.0,
            check=ConnectionPool.check_connection,
            kwargs={
                "application_name": APPLICATION_NAME,
                "connect_timeout": max(1, round(database.connect_timeout)),
                "options": options,
                "autocommit": True,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
            },
        )
        self.pool.open(wait=False)

    def _clean(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return redact(text, self._secrets)

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        try:
            with self.pool.connection(timeout=self.pool_timeout) as conn:
                return self._run(conn, sql, params, timeout)
        except PoolTimeout:
            if self._connect_error is not None:
                raise QueryError("connection", self._connect_error) from None
            raise QueryError(
                "pool", f"no free connection within {self.pool_timeout:g}s (max_connections)"
            ) from None
        except psycopg.errors.QueryCanceled:
            raise QueryError("timeout", f"query exceeded its {timeout:g}s timeout") from None
        except psycopg.OperationalError as exc:
            raise QueryError("connection", self._clean(exc)) from None
        except psycopg.Error as exc:
            raise QueryError("sql", self._clean(exc)) from None

    def _run(
        self, conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any], timeout: float
    ) -> Rows:
        # A client-side cancel backs up statement_timeout when the server cannot answer.
        guard = threading.Timer(timeout + _CANCEL_GRACE, conn.cancel_safe)
        guard.daemon = True
        with conn.transaction():
            # Read-only per transaction too: a query that switched its session's default to
            # read-write (set_config(..., false)) cannot open the next poll's writes.
            conn.execute(_BEGIN_READ_ONLY if self.read_only else _BEGIN, [str(int(timeout * 1000))])
            guard.start()
            started = time.monotonic()
            with self._running_lock:
                self._running.add(conn)
            try:
                # binary results force the extended protocol: one statement per query, so
                # "COMMIT; INSERT …" cannot step out of the read-only transaction
                cursor = conn.execute(_pyformat(sql), dict(params), binary=True)
                columns = tuple(d.name for d in cursor.description or ())
                rows = cursor.fetchall()
            finally:
                guard.cancel()
                with self._running_lock:
                    self._running.discard(conn)
        return Rows(columns, rows, time.monotonic() - started)

    def cancel_running(self) -> int:
        """Cancel every query running now, on the server (shutdown after its grace period)."""
        with self._running_lock:
            running = list(self._running)
        for conn in running:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.cancel_safe(timeout=5.0)
        return len(running)

    def close(self) -> None:
        self.pool.close(timeout=5.0)
