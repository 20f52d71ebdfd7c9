"""What a database source does: run one query with a timeout and return its rows."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from exporter.conventions import Reason
from exporter.spec.model import Database
from exporter.spec.params import ParamStyle

APPLICATION_NAME = "kpi-exporter"

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")
_PASSWORD_IN_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class QueryError(Exception):
    """A query failed; `reason` is the error class published as a metric label."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Rows:
    """A query's result: column names, row tuples, and seconds it ran on its connection."""

    columns: tuple[str, ...]
    rows: Sequence[tuple[Any, ...]]
    elapsed: float = 0.0


class Source(Protocol):
    """A database that runs queries; one per spec database."""

    name: str

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        """Run `sql` with bound `params`; the timeout counts from the query's start."""
        ...

    def cancel_running(self) -> int:
        """Cancel the queries running now, on the database server; returns how many."""
        ...

    def close(self) -> None: ...


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove passwords from DSNs and any known secret from a message."""
    text = _PASSWORD_IN_URL.sub(r"\1***@", text)
    text = _PASSWORD_IN_KV.sub(r"\1***", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def resolve_dsn(database: Database) -> str:
    """The DSN in force: inline, or the first line of `dsn_file`."""
    if database.dsn is not None:
        return database.dsn.get_secret_value().strip()
    assert database.dsn_file is not None
    try:
        return Path(database.dsn_file).read_text().strip().splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise QueryError("connection", f"cannot read dsn_file {database.dsn_file}: {exc}") from None


def dsn_secrets(dsn: str) -> list[str]:
    """Secret parts of a DSN (its password), to scrub from messages."""
    secrets = []
    url = re.match(r"^[a-z+]+://[^:/@]*:([^@]*)@", dsn)
    if url:
        secrets.append(url.group(1))
    kv = _PASSWORD_IN_KV.search(dsn)
    if kv:
        secrets.append(kv.group(2).strip("'"))
    return secrets


@dataclass(frozen=True)
class Guarantees:
    """What a backend promises for every query, stated once for the README and `check`."""

    server_timeout: bool  # the database itself stops a query at its timeout
    cancel: bool  # cancel_running() stops running queries on the database
    read_only: bool  # `read_only: true` is enforced by the database, not by us
    bound_parameters: bool  # `:name` values go to the driver, never into the SQL text


@dataclass(frozen=True)
class DemoDialect:
    """How exporter/demo.py creates and fills the demo tables on this engine."""

    identity: str  # the DDL of an auto-numbered BIGINT primary key column
    placeholder: str  # the driver's positional marker in INSERT statements ('?' or '%s')
    text: str = "TEXT"  # the type of the demo's string columns (some engines index no TEXT)
    # On an engine without CREATE INDEX IF NOT EXISTS (MySQL 8): the query listing the names of
    # the current schema's indexes, so the demo creates only the missing ones.
    index_names: str | None = None


class Backend(Source, Protocol):
    """A Source class as the registry sees it: its declared facts and its constructor.

    `paramstyle` is how the backend rewrites `:name` (spec.params.to_paramstyle); `demo` is
    None when exporter/demo.py cannot create its tables there.
    """

    guarantees: ClassVar[Guarantees]
    paramstyle: ClassVar[ParamStyle]
    demo: ClassVar[DemoDialect | None]

    def __init__(self, name: str, dsn: str, database: Database, pool_timeout: float) -> None: ...


Connection = TypeVar("Connection")


class RunningQueries(Generic[Connection]):
    """The connections inside a query now, so shutdown can cancel them on the server."""

    def __init__(self, cancel: Callable[[Connection], None]) -> None:
        self._cancel = cancel
        self._running: list[Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def track(self, conn: Connection) -> Iterator[None]:
        with self._lock:
            self._running.append(conn)
        try:
            yield
        finally:
            with self._lock:
                self._running.remove(conn)

    def cancel_all(self) -> int:
        """Cancel every query running now (their polls record the outcome); how many."""
        with self._lock:
            running = list(self._running)
        for conn in running:
            self._cancel(conn)
        return len(running)
