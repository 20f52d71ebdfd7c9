"""DuckdbSource against real DuckDB files: the engine contract, plus what is DuckDB's own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import extra
from support.engines import EVENTS_DDL, Engine, EngineContract, Event

from exporter.sources import registry
from exporter.sources.base import QueryError
from exporter.spec.model import Database

duckdb = extra("duckdb", "pip install -e '.[duckdb]'")
from exporter.sources.duckdb import DuckdbSource  # noqa: E402  (needs the extra)


def duckdb_engine(path: Path) -> Engine:
    dsn = f"duckdb:///{path}"

    def insert(rows: Sequence[Event]) -> None:
        # the writer opens the file only while it writes, as an ETL job would
        with duckdb.connect(str(path)) as conn:
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", list(rows))

    def fetch(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    with duckdb.connect(str(path)) as conn:
        conn.execute(EVENTS_DDL)
    return Engine(
        dsn=dsn,
        # through the registry, as the daemon opens it
        open_source=lambda database: registry.open_source("app", database, 2.0),
        insert=insert,
        fetch=fetch,
        long_query="SELECT sum(a.range * b.range) AS n FROM range(1000000) a, range(1000000) b",
    )


class TestDuckdb(EngineContract):
    @pytest.fixture
    def engine(self, tmp_path: Path) -> Engine:
        return duckdb_engine(tmp_path / "app.duckdb")


def test_the_registry_serves_duckdb_dsns(tmp_path: Path) -> None:
    engine = duckdb_engine(tmp_path / "app.duckdb")
    assert isinstance(engine.open_source(Database(dsn=engine.dsn)), DuckdbSource)


def test_missing_file_is_a_connection_error(tmp_path: Path) -> None:
    dsn = f"duckdb:///{tmp_path / 'absent.duckdb'}"
    source = DuckdbSource("app", dsn, Database(dsn=dsn), 2.0)
    with pytest.raises(QueryError) as caught:
        source.query("SELECT 1", {}, 5.0)
    assert caught.value.reason == "connection"
    assert "absent.duckdb" in caught.value.message
    assert not (tmp_path / "absent.duckdb").exists()  # read-only never creates the file


def test_no_free_slot_is_a_pool_error(tmp_path: Path) -> None:
    engine = duckdb_engine(tmp_path / "app.duckdb")
    source = DuckdbSource("app", engine.dsn, Database(dsn=engine.dsn, max_connections=1), 0.2)
    with source.slots.slot(), pytest.raises(QueryError) as caught:  # a query holds the one slot
        source.query("SELECT 1", {}, 5.0)
    assert caught.value.reason == "pool"


def test_syntax_error_is_an_sql_error_on_one_line(tmp_path: Path) -> None:
    engine = duckdb_engine(tmp_path / "app.duckdb")
    source = engine.open_source(Database(dsn=engine.dsn))
    with pytest.raises(QueryError) as caught:
        source.query("SELEC 1", {}, 5.0)
    assert caught.value.reason == "sql" and "\n" not in caught.value.message


def test_timestamp_cursor_and_decimal_values(tmp_path: Path) -> None:
    """A TIMESTAMP cursor is bound as a datetime and DECIMAL sums come back as numbers."""
    import datetime as dt

    path = tmp_path / "app.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE pay (id INTEGER, paid TIMESTAMP, amount DECIMAL(12, 2))")
        conn.execute(
            "INSERT INTO pay SELECT i, TIMESTAMP '2026-01-01' + i * INTERVAL 1 MINUTE, i * 1.25"
            " FROM range(1, 31) t(i)"
        )
    dsn = f"duckdb:///{path}"
    source = DuckdbSource("app", dsn, Database(dsn=dsn), 2.0)
    after = dt.datetime(2026, 1, 1, 0, 10)
    rows = source.query(
        "SELECT count(*) AS n, sum(amount) AS total FROM pay WHERE paid > :cursor",
        {"cursor": after},
        5.0,
    ).rows
    assert (rows[0][0], float(rows[0][1])) == (20, sum(i * 1.25 for i in range(11, 31)))
