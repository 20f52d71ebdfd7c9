"""What a database source does: run one query with a timeout and return its rows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from exporter.spec.model import Database

Reason = Literal["timeout", "pool", "connection", "sql", "result"]
REASONS: tuple[Reason, ...] = ("timeout", "pool", "connection", "sql", "result")
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
    dialect: str

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


def dialect_of(dsn: str) -> str:
    """'sqlite' or 'postgresql' from a DSN's scheme."""
    if dsn.startswith("sqlite:"):
        return "sqlite"
    if dsn.startswith(("postgresql://", "postgres://")) or "=" in dsn:
        return "postgresql"
    raise QueryError("connection", "unsupported DSN scheme (use postgresql:// or sqlite:///)")


def open_source(name: str, database: Database, pool_timeout: float) -> Source:
    """The Source for a spec database; connections are made lazily, never here."""
    dsn = resolve_dsn(database)
    if dialect_of(dsn) == "sqlite":
        from exporter.sources.sqlite import SqliteSource

        return SqliteSource(name, dsn, database, pool_timeout)
    from exporter.sources.postgres import PostgresSource

    return PostgresSource(name, dsn, database, pool_timeout)
