"""Issue 12's backfill: rows per second against the raw fetch of the same rows in the same
batches, and the backfill process' peak RSS, on a PostgreSQL event table of 60 days.

    .venv/bin/python bench/backfill.py [--sizes 250000,1000000] [--step 5m]

Run by hand (not part of `make bench`); results are recorded in bench/README.md. Its data
live in a schema of their own, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from workload import raw_batches_seconds

DAY = 86400
BATCH = 10_000
DSN = os.environ.get("KPI_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def create(schema: str, rows: int) -> None:
    """`rows` events over 60 days, ids in time order give or take 30 s (inside the reorder
    window), five kinds, a lognormal amount."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, amount DOUBLE PRECISION)"
        )
        conn.execute(
            f"INSERT INTO {schema}.events (at, kind, amount)"
            " SELECT %(start)s + i * %(spacing)s - random() * 30,"
            " (ARRAY['a','b','c','d','e'])[1 + i %% 5], exp(random() * 3 - 1)"
            " FROM generate_series(1, %(rows)s) AS i",
            {"start": time.time() - 60 * DAY, "spacing": 60 * DAY / rows, "rows": rows},
        )
        conn.execute(f"ANALYZE {schema}.events")


def queries(schema: str) -> dict[str, str]:
    return {
        "counter": f"SELECT id, at, kind FROM {schema}.events"
        " WHERE id > :cursor ORDER BY id LIMIT :batch",
        "histogram": f"SELECT id, at, kind, amount AS value FROM {schema}.events"
        " WHERE id > :cursor ORDER BY id LIMIT :batch",
    }


def spec(schema: str, path: Path) -> None:
    kpis = []
    for kind, sql in queries(schema).items():
        name = "bench_events_total" if kind == "counter" else "bench_event_amount"
        extra = "\n    buckets: [0.5, 1, 2, 5, 10, 20]" if kind == "histogram" else ""
        kpis.append(
            f"""  - name: {name}
    type: {kind}
    database: app
    interval: 1h
    timeout: 60s
    cursor: id
    event_time: at
    batch: {BATCH}
    labels: [kind]{extra}
    query: "{sql}"
"""
        )
    path.write_text(
        f"exporter: {{labels: {{service: bench}}}}\n"
        f'databases:\n  app: {{dsn: "{DSN}"}}\nkpis:\n' + "".join(kpis)
    )


def backfill(spec_path: Path, kpi: str, step: str, out: Path, fmt: str) -> tuple[float, float]:
    """Wall seconds (process start included) and peak RSS (MiB) of one backfill process."""
    started = time.perf_counter()
    process = subprocess.Popen(  # our own CLI, a fixed argument list
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "backfill",
            "-c",
            str(spec_path),
            "--since",
            "61d",
            "--step",
            step,
            "--kpi",
            kpi,
            "--label",
            "instance=bench:9091",
            "-o",
            str(out),
            "--format",
            fmt,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(
            f"backfill failed: {process.stderr.read().decode() if process.stderr else ''}"
        )
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250000,1000000")
    parser.add_argument("--step", default="5m")
    args = parser.parse_args()
    print(
        "| rows | KPI | raw fetch rows/s | backfill rows/s (text) | ratio | peak RSS MiB "
        "| with promtool (blocks) s |"
    )
    print("|---|---|---|---|---|---|---|")
    for rows in [int(size) for size in args.sizes.split(",")]:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        try:
            create(schema, rows)
            with tempfile.TemporaryDirectory() as tmp:
                spec_path = Path(tmp) / "spec.yaml"
                spec(schema, spec_path)
                for kind, sql in queries(schema).items():
                    kpi = "bench_events_total" if kind == "counter" else "bench_event_amount"
                    raw_seconds, raw_rows = raw_batches_seconds(DSN, sql, BATCH)
                    text_seconds, rss = backfill(
                        spec_path, kpi, args.step, Path(tmp) / kind, "openmetrics"
                    )
                    blocks_seconds, _ = backfill(
                        spec_path, kpi, args.step, Path(tmp) / f"{kind}-b", "blocks"
                    )
                    raw_rate, rate = raw_rows / raw_seconds, rows / text_seconds
                    print(
                        f"| {rows:,} | {kind} | {raw_rate:,.0f} | {rate:,.0f} | "
                        f"{rate / raw_rate:.0%} | {rss:.0f} | {blocks_seconds:.0f} |",
                        flush=True,
                    )
        finally:
            with psycopg.connect(DSN, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
