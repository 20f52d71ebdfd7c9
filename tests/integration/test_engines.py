"""The engine contract on real PostgreSQL, MariaDB and SQLite, through the SQLAlchemy backend
and through each native backend; plus what is the SQLAlchemy backend's own (unknown dialects,
refused read-only, the README's dialect table). DuckDB has test_duckdb.py."""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, extra, need
from support.engines import EVENTS_DDL, Engine, EngineContract, Event

from exporter.sources import registry
from exporter.sources.base import QueryError
from exporter.spec.model import Database

extra("sqlalchemy", "pip install -e '.[sqlalchemy]'")
from exporter.sources.sqlalchemy import CANCELS, DIALECTS, SqlalchemySource  # noqa: E402

MYSQL_DSN = os.environ.get("KPI_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
INSERT = "INSERT INTO events (id, kind, amount, stamp) VALUES ({0}, {0}, {0}, {0})"


def open_through_registry(database: Database) -> Any:
    return registry.open_source("app", database, 2.0)


@pytest.fixture
def postgres_engine(pg_schema: tuple[str, str]) -> Iterator[Engine]:
    import psycopg

    dsn, _ = pg_schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(EVENTS_DDL)

    def insert(rows: Sequence[Event]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.executemany(INSERT.format("%s"), rows)

    def fetch(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(sql).fetchall()

    yield Engine(
        dsn="sqlalchemy+postgresql+psycopg://" + dsn.removeprefix("postgresql://"),
        open_source=open_through_registry,
        insert=insert,
        fetch=fetch,
        long_query="SELECT pg_sleep(600) AS n",
    )


def _mysql_server() -> dict[str, Any]:
    parts = urlsplit(MYSQL_DSN)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
    }


@pytest.fixture(params=["mysql+pymysql", "mariadb+mariadbconnector"])
def mariadb_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh MariaDB database, reached through PyMySQL and through MariaDB Connector (the
    native backend's driver); the writer is PyMySQL."""
    pymysql = extra("pymysql", "the dev extra: pip install -e '.[dev]'")
    if request.param.endswith("mariadbconnector"):
        need(
            importlib.util.find_spec("mariadb") is not None,
            "MariaDB Connector/Python (the mysql extra) is not installed",
        )
    server = _mysql_server()
    try:
        admin = pymysql.connect(**server, connect_timeout=3, autocommit=True)
    except pymysql.Error as exc:
        need(False, f"MariaDB not reachable at {server['host']}:{server['port']}: {exc}")
    database = f"t_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    conn_args = {**server, "database": database, "autocommit": True}
    with pymysql.connect(**conn_args) as conn, conn.cursor() as cursor:
        cursor.execute(EVENTS_DDL)

    def insert(rows: Sequence[Event]) -> None:
        with pymysql.connect(**conn_args) as conn, conn.cursor() as cursor:
            cursor.executemany(INSERT.format("%s"), rows)

    def fetch(sql: str) -> list[tuple[Any, ...]]:
        with pymysql.connect(**conn_args) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    password = f":{server['password']}" if server["password"] else ""
    try:
        yield Engine(
            dsn=f"sqlalchemy+{request.param}://{server['user']}{password}@{server['host']}:"
            f"{server['port']}/{database}",
            open_source=open_through_registry,
            insert=insert,
            fetch=fetch,
            long_query="SELECT SLEEP(600) AS n",
        )
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {database}")
        admin.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    path = tmp_path / "app.db"

    def insert(rows: Sequence[Event]) -> None:
        with sqlite3.connect(path) as conn:
            conn.executemany(INSERT.format("?"), rows)

    def fetch(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    with sqlite3.connect(path) as conn:
        conn.execute(EVENTS_DDL)
    return Engine(
        dsn=f"sqlalchemy+sqlite:///{path}",
        open_source=open_through_registry,
        insert=insert,
        fetch=fetch,
        long_query=(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)"
            " SELECT count(*) AS n FROM c"
        ),
    )


class TestPostgresql(EngineContract):
    @pytest.fixture
    def engine(self, postgres_engine: Engine) -> Engine:
        return postgres_engine


class TestMariadb(EngineContract):
    @pytest.fixture
    def engine(self, mariadb_engine: Engine) -> Engine:
        return mariadb_engine


class TestSqlite(EngineContract):
    @pytest.fixture
    def engine(self, sqlite_engine: Engine) -> Engine:
        return sqlite_engine


def test_the_registry_serves_every_sqlalchemy_dialect(sqlite_engine: Engine) -> None:
    source = sqlite_engine.open_source(Database(dsn=sqlite_engine.dsn))
    assert isinstance(source, SqlalchemySource) and source.dialect == "sqlite"


def test_read_only_on_a_dialect_without_read_only_transactions_is_refused() -> None:
    extra("sqlalchemy.dialects.mssql", "part of the sqlalchemy extra")
    dsn = "sqlalchemy+mssql+pymssql://u:s3cret@db.example/x"
    with pytest.raises(QueryError) as caught:
        open_through_registry(Database(dsn=dsn))
    assert caught.value.reason == "connection"
    assert "mssql dialect has no read-only transactions" in caught.value.message
    assert "set read_only: false" in caught.value.message and "s3cret" not in caught.value.message


def test_unknown_dialect_is_named() -> None:
    with pytest.raises(QueryError) as caught:
        open_through_registry(Database(dsn="sqlalchemy+nosuch://h/db"))
    assert caught.value.reason == "connection"
    assert "SQLAlchemy has no dialect 'nosuch'" in caught.value.message


def test_not_a_url_names_the_form() -> None:
    with pytest.raises(QueryError) as caught:
        open_through_registry(Database(dsn="sqlalchemy+://nothing"))
    assert "sqlalchemy+mssql+pyodbc://" in caught.value.message


def test_connection_refused_is_a_connection_error_without_the_password() -> None:
    dsn = "sqlalchemy+postgresql+psycopg://kpi:pa55word@127.0.0.1:1/db"
    source = open_through_registry(Database(dsn=dsn, connect_timeout=2.0))
    try:
        with pytest.raises(QueryError) as caught:
            source.query("SELECT 1", {}, 5.0)
    finally:
        source.close()
    assert caught.value.reason == "connection"
    assert "pa55word" not in caught.value.message


def test_readme_dialect_table_matches_the_code() -> None:
    """The README's SQLAlchemy table states, per dialect, what DIALECTS and CANCELS hold."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("#### Through SQLAlchemy", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"`?\w+`?", cells[0]) and cells[0] != "dialect":
            rows[cells[0].strip("`")] = cells[1:4]
    for name, support in DIALECTS.items():
        read_only, server_timeout, cancel = rows[name]
        assert (read_only != "no") == (support.read_only is not None), name
        assert (server_timeout != "no") == (support.server_timeout is not None), name
        drivers = set(re.findall(r"`(\w+)`", cancel))
        assert drivers <= set(CANCELS), name
    assert rows["other"][:2] == ["refused (set `read_only: false`)", "no"]


def _native(engine: Engine, dsn: str) -> Engine:
    """The same database through the native backend of its scheme."""
    return Engine(dsn, open_through_registry, engine.insert, engine.fetch, engine.long_query)


class TestNativePostgresql(EngineContract):
    @pytest.fixture
    def engine(self, postgres_engine: Engine) -> Engine:
        return _native(postgres_engine, "postgresql://" + postgres_engine.dsn.split("://", 1)[1])


class TestNativeSqlite(EngineContract):
    @pytest.fixture
    def engine(self, sqlite_engine: Engine) -> Engine:
        return _native(sqlite_engine, "sqlite://" + sqlite_engine.dsn.split("://", 1)[1])


class TestNativeMariadb(EngineContract):
    @pytest.fixture
    def engine(self, mariadb_engine: Engine) -> Engine:
        return _native(mariadb_engine, "mysql://" + mariadb_engine.dsn.split("://", 1)[1])
