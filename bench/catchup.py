"""Issue 3's catch-up: a cursor KPI back-filling a 1M-row event table from a fresh state dir."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from processes import start_kpi_exporter, wait_for
from scrape import Scraper, sample
from specs import BenchKpi, write_kpi_exporter_spec
from workload import Workload, raw_batches_seconds

from exporter.collection.state import STATE_FILE

BATCH = 10_000
BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60]


@dataclass(frozen=True)
class CatchUp:
    """Rows per second of the exporter's catch-up and of the raw fetch in the same batches."""

    variant: str
    rows: int
    seconds: float
    raw_seconds: float
    spawn_to_done: float
    peak_mib: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def raw_rate(self) -> float:
        return self.rows / self.raw_seconds


def catch_up_kpi(workload: Workload, variant: str) -> BenchKpi:
    """The counter counts each event once; the histogram observes each event's duration."""
    counter = variant == "counter"
    return BenchKpi(
        "bench_events_total" if counter else "bench_event_duration_seconds",
        workload.events_counter_query() if counter else workload.events_histogram_query(),
        ("kind",),
        interval=3600,  # one poll: it keeps fetching batches until it has caught up
        timeout=60,
        type=variant,
        extra={"cursor": "id", "start": "earliest", "batch": BATCH}
        | ({} if counter else {"buckets": BUCKETS}),
    )


def measure(workload: Workload, variant: str, events: int, workdir: Path) -> CatchUp:
    """Spawn the exporter on a fresh state dir and wait until it shows every row processed.
    The rate comes from the state file, which stores each batch with its time: rows after
    the first batch over the time from the first batch's commit to the last's, so start-up
    is not counted in it (the exporter's own metrics may be rendered up to 1 s late)."""
    kpi = catch_up_kpi(workload, variant)
    raw_seconds, raw_rows = raw_batches_seconds(workload.dsn, kpi.query("value"), BATCH)
    if raw_rows != events:
        raise RuntimeError(f"raw fetch read {raw_rows} rows, expected {events}")
    rundir = workdir / f"catchup-{variant}"
    rundir.mkdir()
    state_dir = rundir / "state"
    spec = write_kpi_exporter_spec(rundir / "spec.yaml", workload.dsn, [kpi], state_dir)
    spawned = time.time()
    exporter = start_kpi_exporter(spec, rundir)
    scraper = Scraper(exporter.port)

    def caught_up() -> bool:
        rows = sample(scraper.text(), "kpi_exporter_rows_processed_total", kpi=kpi.name)
        return rows is not None and rows >= events

    try:
        wait_for(caught_up, 600, f"{events} rows processed", exporter)
        _, peak = exporter.memory_mib()
    finally:
        scraper.close()
        exporter.stop()
    with closing(sqlite3.connect(f"file:{state_dir / STATE_FILE}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT rows, created, updated FROM kpis WHERE name = ?", (kpi.name,)
        ).fetchone()
    if row is None or row[0] != events:
        raise RuntimeError(f"the state file does not hold {events} rows for {kpi.name}: {row}")
    rows, first_commit, last_commit = int(row[0]), float(row[1]), float(row[2])
    return CatchUp(
        variant,
        rows - BATCH,
        last_commit - first_commit,
        raw_seconds * (rows - BATCH) / raw_rows,
        last_commit - spawned,
        peak,
    )
