"""Poll ÷ raw fetch of a 10k-row gauge on the DuckDB and SQLAlchemy backends (run by hand).

    .venv/bin/python bench/engines.py [--rows 10000] [--repeat 9]

The same 10k rows `(id, shop, sku, value)` go into a DuckDB file (a temporary directory) and a
PostgreSQL schema of their own (`bench_<random>` on KPI_TEST_POSTGRES_DSN, dropped at the
end). For each backend, KpiPoll.run (query through the backend, validation, snapshot and
exposition) is timed against the raw fetch of the same SQL with the same driver, interleaved,
median of --repeat. Native PostgreSQL is measured alongside for reference. Prints a markdown
table; bench/README.md records one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg

from exporter.collection.polls import KpiPoll
from exporter.serving.publication import Publication
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources import registry
from exporter.spec.model import Spec

POSTGRES_DSN = os.environ.get("KPI_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SQL = "SELECT shop, sku, value FROM gauge_rows ORDER BY id"
DDL = (
    "CREATE TABLE gauge_rows"
    " (id INTEGER PRIMARY KEY, shop VARCHAR(20), sku VARCHAR(20), value DOUBLE PRECISION)"
)


def rows(count: int) -> list[tuple[int, str, str, float]]:
    return [(i, f"shop{i % 50}", f"sku{i}", i * 0.5) for i in range(count)]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fetch: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        fetch()
        return time.perf_counter() - started

    return run


def measure(
    dsn: str, workdir: Path, raws: dict[str, Callable[[], float]], repeat: int
) -> tuple[float, dict[str, float]]:
    """Median ms of the poll and of each raw fetch, run in turn so load hits all alike."""
    spec = Spec.model_validate(
        {
            "exporter": {"state_dir": str(workdir / "state"), "labels": {"service": "bench"}},
            "databases": {"db": {"dsn": dsn, "max_connections": 2}},
            "kpis": [
                {
                    "name": "bench_gauge",
                    "type": "gauge",
                    "database": "db",
                    "interval": "6s",
                    "max_series": 200_000,
                    "labels": ["shop", "sku"],
                    "query": SQL,
                }
            ],
        }
    )
    metrics = SelfMetrics()
    source = registry.open_source("db", spec.databases["db"], 5.0)
    poll = KpiPoll(spec, spec.kpis[0], source, metrics, Publication(metrics.render).publish)
    polls: list[float] = []
    fetches: dict[str, list[float]] = {name: [] for name in raws}
    try:
        for _ in range(repeat + 1):  # the first round warms caches and is dropped
            for name, fetch in raws.items():
                fetches[name].append(fetch())
            started = time.perf_counter()
            if not poll.run(force=True):
                raise RuntimeError(f"{dsn.split(':')[0]} poll failed: {poll.status.last_error}")
            polls.append(time.perf_counter() - started)
    finally:
        source.close()
    return median_ms(polls[1:]), {name: median_ms(t[1:]) for name, t in fetches.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    data = rows(args.rows)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    table = [
        "| backend | poll (median) | raw fetch, same driver | poll ÷ raw |",
        "|---|---|---|---|",
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        psycopg.connect(POSTGRES_DSN, autocommit=True) as admin,
    ):
        workdir = Path(tmp)
        path = workdir / "bench.duckdb"
        with duckdb.connect(str(path)) as conn:
            conn.execute(DDL)
            conn.executemany("INSERT INTO gauge_rows VALUES (?, ?, ?, ?)", data)
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            separator = "&" if "?" in POSTGRES_DSN else "?"
            pg_dsn = f"{POSTGRES_DSN}{separator}options=-csearch_path%3D{schema}"
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute(DDL)
                with conn.cursor().copy("COPY gauge_rows FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
                conn.execute("ANALYZE gauge_rows")

            def duckdb_open() -> float:
                # closed before the poll: an open file would spare the poll its own open
                with duckdb.connect(str(path), read_only=True) as conn:
                    return timed(lambda: conn.execute(SQL).fetchall())()

            def duckdb_per_query() -> object:
                with duckdb.connect(str(path), read_only=True) as conn:
                    return conn.execute(SQL).fetchall()

            poll, raw = measure(
                f"duckdb:///{path}",
                workdir,
                {"open": duckdb_open, "per_query": timed(duckdb_per_query)},
                args.repeat,
            )
            table.append(
                f"| DuckDB | {poll:.1f} ms | {raw['open']:.1f} ms on an open connection;"
                f" {raw['per_query']:.1f} ms opening the file as the backend does |"
                f" {poll / raw['open']:.1f}x ; {poll / raw['per_query']:.2f}x |"
            )
            with psycopg.connect(pg_dsn, autocommit=True) as raw_conn:
                fetch = {"psycopg": timed(lambda: raw_conn.execute(SQL).fetchall())}
                sa_dsn = "sqlalchemy+postgresql+psycopg://" + pg_dsn.removeprefix("postgresql://")
                for label, dsn in (
                    ("SQLAlchemy + PostgreSQL (psycopg)", sa_dsn),
                    ("PostgreSQL native (reference)", pg_dsn),
                ):
                    poll, raw = measure(dsn, workdir, fetch, args.repeat)
                    table.append(
                        f"| {label} | {poll:.1f} ms | {raw['psycopg']:.1f} ms |"
                        f" {poll / raw['psycopg']:.2f}x |"
                    )
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(f"{args.rows} rows, median of {args.repeat} (duckdb {duckdb.__version__})")
    print("\n".join(table))


if __name__ == "__main__":
    main()
