"""The benchmark's PostgreSQL data: a labelled gauge table, an event table, raw fetch timings."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import psycopg

GAUGE_ROWS = 100_000
SHOPS = 100


@dataclass(frozen=True)
class Workload:
    """Where the benchmark's tables live: one schema of its own, dropped at the end."""

    dsn: str
    schema: str

    def gauge_query(self, series: int) -> str:
        """The labelled gauge KPI's query (`{value}`: the value column's alias); one row, so
        one series, per (shop, sku)."""
        return (
            f"SELECT shop, sku, value AS {{value}} FROM {self.schema}.gauge"
            f" WHERE id <= {series} ORDER BY id"
        )

    def events_counter_query(self) -> str:
        return (
            f"SELECT id, kind FROM {self.schema}.events WHERE id > :cursor ORDER BY id LIMIT :batch"
        )

    def events_histogram_query(self) -> str:
        return (
            f"SELECT id, kind, duration AS value FROM {self.schema}.events"
            " WHERE id > :cursor ORDER BY id LIMIT :batch"
        )


def create(dsn: str, events: int) -> Workload:
    """A fresh `bench_*` schema with the gauge table (100k rows) and `events` rows of events."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.gauge (id integer PRIMARY KEY, shop text NOT NULL,"
            " sku text NOT NULL, value double precision NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {schema}.gauge SELECT g, 'shop-' || (g % {SHOPS}),"
            " 'sku-' || lpad(g::text, 6, '0'), round((random() * 1000)::numeric, 2)"
            f" FROM generate_series(1, {GAUGE_ROWS}) g"
        )
        conn.execute(
            f"CREATE TABLE {schema}.events (id bigint PRIMARY KEY, kind text NOT NULL,"
            " duration double precision NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {schema}.events SELECT g,"
            " (ARRAY['checkout','signup','search','refund','upload'])[1 + g % 5],"
            " round((random() * random() * 60)::numeric, 3)"
            f" FROM generate_series(1, {events}) g"
        )
        conn.execute(f"ANALYZE {schema}.gauge")
        conn.execute(f"ANALYZE {schema}.events")
    return Workload(dsn, schema)


def drop(workload: Workload) -> None:
    with psycopg.connect(workload.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {workload.schema} CASCADE")


def raw_batches_seconds(dsn: str, sql: str, batch: int) -> tuple[float, int]:
    """Seconds and rows to read the event table in cursor order, `batch` rows per fetch."""
    pyformat = sql.replace(":cursor", "%(cursor)s").replace(":batch", "%(batch)s")
    rows = 0
    cursor = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(100_000):  # bound: 1M rows / 10k per batch needs 101 fetches
            fetched = conn.execute(pyformat, {"cursor": cursor, "batch": batch}).fetchall()
            rows += len(fetched)
            if fetched:
                cursor = fetched[-1][0]
            if len(fetched) < batch:
                break
        elapsed = time.perf_counter() - started
    return elapsed, rows
