"""A 2 s query on one KPI: does it slow scrapes down, or delay another KPI's polls?"""

from __future__ import annotations

import gzip
import itertools
import statistics
import time
from dataclasses import dataclass

import psycopg
from processes import Exporter
from scrape import PROMETHEUS_HEADERS, Scraper, sample
from specs import BenchKpi

SLOW_SECONDS = 2


def slow_kpis(schema: str, gauge_sql: str) -> list[BenchKpi]:
    """A 10k-series gauge, a KPI whose query sleeps 2 s every 3 s, and a 1 s KPI beside it."""
    return [
        BenchKpi("bench_gauge", gauge_sql, ("shop", "sku"), interval=6),
        BenchKpi(
            "bench_slow",
            f"SELECT 1.0 AS {{value}} FROM pg_sleep({SLOW_SECONDS}) /* {schema} slow */",
            interval=3,
            timeout=10,
        ),
        # its value is the database's clock at each poll: a poll time that every scrape shows
        # fresh (the exporters' own last-success metrics may be rendered a second late)
        BenchKpi(
            "bench_fast",
            f"SELECT extract(epoch FROM clock_timestamp()) AS {{value}} /* {schema} fast */",
            interval=1,
        ),
    ]


@dataclass(frozen=True)
class SlowQueryEffect:
    """Scrape latency with and without the slow query running; the 1 s KPI's poll gaps."""

    during_median: float
    during: int
    outside_median: float
    outside: int
    fast_median_gap: float
    fast_max_gap: float
    fast_polls: int


def measure(exporter: Exporter, dsn: str, schema: str, scrapes: int) -> SlowQueryEffect:
    """`scrapes` Prometheus-style scrapes paced 0.15 s apart; before each one, PostgreSQL says
    whether the slow query is running (pg_stat_activity), so the two groups are compared."""
    scraper = Scraper(exporter.port)
    during: list[float] = []
    outside: list[float] = []
    stamps: list[float] = []
    marker = f"%/* {schema} slow */%"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(scrapes):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query LIKE %s AND pid <> pg_backend_pid()",
                    [marker],
                ).fetchone()
                running = bool(row and row[0])
                elapsed, body, encoding = scraper.get("/metrics", PROMETHEUS_HEADERS)
                (during if running else outside).append(elapsed)
                text = (gzip.decompress(body) if encoding == "gzip" else body).decode()
                stamp = sample(text, "bench_fast")
                if stamp is not None and (not stamps or stamp != stamps[-1]):
                    stamps.append(stamp)
                time.sleep(max(0.0, 0.15 - elapsed))
    finally:
        scraper.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    if not during or not outside or not gaps:
        raise RuntimeError("the slow-query window saw no overlap or no second fast poll")
    return SlowQueryEffect(
        statistics.median(during),
        len(during),
        statistics.median(outside),
        len(outside),
        statistics.median(gaps),
        max(gaps),
        len(stamps),
    )
