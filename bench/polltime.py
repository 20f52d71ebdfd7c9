"""Poll time in-process: kpi-exporter's KpiPoll.run and query-exporter's own poll, against
the raw fetch of the same query with the same driver (psycopg, or MariaDB Connector/Python for
mysql:// DSNs), runs interleaved so load noise hits all alike."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from processes import QE_VENV
from specs import BenchKpi, kpi_exporter_spec, write_query_exporter_config

from exporter.collection.polls import KpiPoll
from exporter.serving.publication import Publication
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.mysql import connect_arguments
from exporter.sources.registry import open_source
from exporter.spec.model import Spec

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PollTiming:
    """Median wall and CPU seconds of a poll, and of the raw fetch of its query."""

    wall: float
    cpu: float
    raw: float


def kpi_exporter_poll(dsn: str, kpi: BenchKpi, repeat: int) -> PollTiming:
    """KpiPoll.run (query, validation, snapshot and both exposition builds) on a real pool."""
    spec = Spec.model_validate(kpi_exporter_spec(dsn, [kpi], Path(tempfile.gettempdir())))
    metrics = SelfMetrics()
    publication = Publication(metrics.render)
    source = open_source("db", spec.databases["db"], spec.exporter.pool_timeout)
    poll = KpiPoll(spec, spec.kpis[0], source, metrics, publication.publish)
    raw_sql = kpi.query("value")
    walls, cpus, raws = [], [], []
    try:
        with raw_fetcher(dsn) as fetch:
            fetch(raw_sql)
            if not poll.run(force=True):
                raise RuntimeError(f"poll failed: {poll.status.last_error}")
            for _ in range(repeat):
                started = time.perf_counter()
                fetch(raw_sql)
                raws.append(time.perf_counter() - started)
                wall, cpu = time.perf_counter(), time.process_time()
                if not poll.run(force=True):
                    raise RuntimeError(f"poll failed: {poll.status.last_error}")
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
    finally:
        source.close()
    return PollTiming(statistics.median(walls), statistics.median(cpus), statistics.median(raws))


def query_exporter_poll(
    dsn: str, kpi: BenchKpi, repeat: int, workdir: Path, qe_dsn: str | None = None
) -> PollTiming:
    """query-exporter's poll (execute, fetch, metric updates), timed inside its own venv;
    `qe_dsn` is the same database as SQLAlchemy names it, when that differs from `dsn`."""
    config = write_query_exporter_config(workdir / f"qe-poll-{kpi.name}.yaml", qe_dsn or dsn, [kpi])
    raw = _raw(dsn, kpi.query(kpi.name), repeat)
    script = [str(QE_VENV / "bin" / "python"), str(BENCH / "qe_poll.py")]
    done = subprocess.run(
        [*script, str(config), kpi.name, str(repeat)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"query-exporter poll timing failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return PollTiming(result["wall"], result["cpu"], raw)


def _raw(dsn: str, sql: str, repeat: int) -> float:
    timings = []
    with raw_fetcher(dsn) as fetch:
        fetch(sql)
        for _ in range(repeat):
            started = time.perf_counter()
            fetch(sql)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@contextlib.contextmanager
def raw_fetcher(dsn: str) -> Iterator[Callable[[str], list[Any]]]:
    """fetch(sql) -> every row, with the driver the exporter uses, on one open connection."""
    if not dsn.startswith(("mysql://", "mariadb://")):
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield lambda sql: conn.execute(sql).fetchall()
        return
    import mariadb

    conn = mariadb.connect(**connect_arguments(dsn), autocommit=True)
    cursor = conn.cursor()

    def fetch(sql: str) -> list[Any]:
        cursor.execute(sql)
        return list(cursor.fetchall())

    try:
        yield fetch
    finally:
        conn.close()
