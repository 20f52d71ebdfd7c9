"""`make bench`: kpi-exporter against query-exporter and the raw fetch, on PostgreSQL and
MariaDB."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import catchup
import mariadb_workload
import polltime
import psycopg
import report
import serving
import slowquery
import workload
from processes import (
    QE_VENV,
    ROOT,
    Exporter,
    start_kpi_exporter,
    start_query_exporter,
)
from specs import BenchKpi, write_kpi_exporter_spec, write_query_exporter_config

DSN = os.environ.get("KPI_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_DSN = os.environ.get("KPI_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
INTERVAL = 6  # seconds between polls of the gauge KPI, on both exporters
# SQLAlchemy's postgresql driver, and its MariaDB driver: the one kpi-exporter uses
QE_PACKAGES = ["query-exporter", "psycopg[binary]", "mariadb<2"]


def ensure_query_exporter() -> str:
    """query-exporter in its own venv (bench/.venv-qe), installed when missing; its version."""
    python = QE_VENV / "bin" / "python"
    has_mariadb = subprocess.run([str(python), "-c", "import mariadb"], capture_output=True)
    if (QE_VENV / "bin" / "query-exporter").exists() and has_mariadb.returncode != 0:
        print("installing the MariaDB driver into bench/.venv-qe")
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mariadb<2"], check=True)
    if not (QE_VENV / "bin" / "query-exporter").exists():
        print(
            f"installing query-exporter into {QE_VENV.relative_to(ROOT)} (not a project dependency)"
        )
        subprocess.run([sys.executable, "-m", "venv", str(QE_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *QE_PACKAGES], check=True, timeout=900
        )
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('query-exporter'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def gauge_kpi(work: workload.Workload, series: int) -> BenchKpi:
    return BenchKpi("bench_gauge", work.gauge_query(series), ("shop", "sku"), interval=INTERVAL)


def start(
    kind: str, kpis: list[BenchKpi], rundir: Path, dsn: str = DSN, qe_dsn: str = DSN
) -> Exporter:
    rundir.mkdir(parents=True, exist_ok=True)
    if kind == "kpi-exporter":
        spec = write_kpi_exporter_spec(rundir / "spec.yaml", dsn, kpis, rundir / "state")
        return start_kpi_exporter(spec, rundir)
    config = write_query_exporter_config(rundir / "config.yaml", qe_dsn, kpis)
    return start_query_exporter(config, rundir)


def serve(
    kind: str,
    kpis: list[BenchKpi],
    rundir: Path,
    args: argparse.Namespace,
    dsn: str = DSN,
    qe_dsn: str = DSN,
) -> serving.Serving:
    exporter = start(kind, kpis, rundir, dsn, qe_dsn)
    try:
        serving.wait_first_poll(exporter, "bench_gauge", timeout=120)
        return serving.measure(exporter, "bench_gauge", INTERVAL, args.scrapes, args.cpu_polls)
    finally:
        exporter.stop()


def slow(
    kind: str, work: workload.Workload, rundir: Path, scrapes: int
) -> slowquery.SlowQueryEffect:
    kpis = slowquery.slow_kpis(work.schema, work.gauge_query(10_000))
    exporter = start(kind, kpis, rundir)
    try:
        for name in ("bench_gauge", "bench_slow", "bench_fast"):
            serving.wait_first_poll(exporter, name, timeout=120)
        return slowquery.measure(exporter, DSN, work.schema, scrapes)
    finally:
        exporter.stop()


def machine(mariadb_version: str | None) -> str:
    with psycopg.connect(DSN) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs, "
        f"load average at start {load[0]:.1f}; Python {platform.python_version()}; "
        f"PostgreSQL {row[0] if row else '?'}"
        + (f" and MariaDB {mariadb_version}" if mariadb_version else "")
        + " on 127.0.0.1"
    )


def mariadb_sizes(
    sizes: list[int], kinds: list[str], workdir: Path, args: argparse.Namespace
) -> list[report.SizeResult]:
    """The gauge sizes again on MariaDB: poll against the raw fetch with the same driver (MariaDB
    Connector/Python), and both exporters serving it (query-exporter through SQLAlchemy's
    mariadbconnector dialect, the same driver)."""
    qe_dsn = mariadb_workload.sqlalchemy_url(MYSQL_DSN)
    work = mariadb_workload.create(MYSQL_DSN)
    results = []
    try:
        for series in sizes:
            kpi = gauge_kpi(work, series)
            print(f"[MariaDB {series:,} series] poll timing in-process", flush=True)
            ours_poll = polltime.kpi_exporter_poll(MYSQL_DSN, kpi, args.poll_repeat)
            qe_poll = None
            if "query-exporter" in kinds:
                qe_poll = polltime.query_exporter_poll(
                    MYSQL_DSN, kpi, args.poll_repeat, workdir, qe_dsn
                )
            served = {}
            for kind in kinds:
                print(f"[MariaDB {series:,} series] {kind}: scrapes, memory, CPU", flush=True)
                rundir = workdir / f"mariadb-{kind}-{series}"
                served[kind] = serve(kind, [kpi], rundir, args, MYSQL_DSN, qe_dsn)
            results.append(
                report.SizeResult(
                    series, ours_poll, served["kpi-exporter"], qe_poll, served.get("query-exporter")
                )
            )
    finally:
        mariadb_workload.drop(work)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="gauge series counts")
    parser.add_argument("--scrapes", type=int, default=50, help="timed scrapes per form")
    parser.add_argument("--cpu-polls", type=int, default=3, help="poll intervals in the CPU window")
    parser.add_argument("--poll-repeat", type=int, default=7, help="timed in-process polls")
    parser.add_argument("--events", type=int, default=1_000_000, help="event rows for catch-up")
    parser.add_argument("--no-query-exporter", action="store_true", help="kpi-exporter only")
    parser.add_argument("--no-readme", action="store_true", help="print, do not record")
    parser.add_argument("--no-mariadb", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--mariadb-only", action="store_true", help="the MariaDB gauge only (print, no record)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    mariadb_version = None
    if not args.no_mariadb:
        try:
            mariadb_version = mariadb_workload.server_version(MYSQL_DSN)
        except Exception as exc:  # the driver or the server is missing: say which
            print(f"MariaDB is not usable at {MYSQL_DSN}: {exc}", file=sys.stderr)
            return 2
    try:
        header = machine(mariadb_version)
    except psycopg.Error as exc:
        print(f"PostgreSQL is not reachable at {DSN}: {exc}", file=sys.stderr)
        return 2
    qe_version = None if args.no_query_exporter else ensure_query_exporter()
    kinds = ["kpi-exporter"] + ([] if qe_version is None else ["query-exporter"])
    workdir = Path(tempfile.mkdtemp(prefix="kpi-bench-"))
    print(f"{header}\nquery-exporter {qe_version or 'skipped'}; work dir {workdir}")
    if args.mariadb_only:
        maria = mariadb_sizes(sizes, kinds, workdir, args)
        print("\n" + render_mariadb(maria))
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    print(
        f"creating the workload: a {workload.GAUGE_ROWS:,}-row gauge table, {args.events:,} events"
    )
    work = workload.create(DSN, args.events)
    try:
        sizes_done: list[report.SizeResult] = []
        for series in sizes:
            kpi = gauge_kpi(work, series)
            print(f"[{series:,} series] poll timing in-process", flush=True)
            ours_poll = polltime.kpi_exporter_poll(DSN, kpi, args.poll_repeat)
            qe_poll = None
            if qe_version is not None:
                qe_poll = polltime.query_exporter_poll(DSN, kpi, args.poll_repeat, workdir)
            served: dict[str, serving.Serving] = {}
            for kind in kinds:
                print(f"[{series:,} series] {kind}: scrapes, memory, CPU per poll", flush=True)
                served[kind] = serve(kind, [kpi], workdir / f"{kind}-{series}", args)
            sizes_done.append(
                report.SizeResult(
                    series, ours_poll, served["kpi-exporter"], qe_poll, served.get("query-exporter")
                )
            )
        effects = {}
        for kind in kinds:
            print(f"[slow query] {kind}", flush=True)
            effects[kind] = slow(kind, work, workdir / f"{kind}-slow", 2 * args.scrapes)
        catchups = []
        for variant in ("counter", "histogram"):
            print(f"[catch-up] {variant} over {args.events:,} events", flush=True)
            catchups.append(catchup.measure(work, variant, args.events, workdir))
    finally:
        workload.drop(work)
    maria = [] if mariadb_version is None else mariadb_sizes(sizes, kinds, workdir, args)
    body = render(header, qe_version, sizes_done, effects, catchups, maria)
    print("\n" + body)
    if not args.no_readme:
        report.write_readme(ROOT / "bench" / "README.md", body)
        print("recorded in bench/README.md")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def render(
    header: str,
    qe_version: str | None,
    sizes: list[report.SizeResult],
    effects: dict[str, slowquery.SlowQueryEffect],
    catchups: list[catchup.CatchUp],
    maria: list[report.SizeResult],
) -> str:
    return (
        f"Run: {header}; query-exporter {qe_version or 'not run'}.\n\n"
        f"**Labelled gauge KPI** (poll every {INTERVAL} s; scrapes over one keep-alive "
        "connection; RSS after warm-up and the scrapes)\n\n"
        f"{report.gauge_table(sizes)}\n"
        "**A 2 s query on one KPI** (10k-series gauge beside it; Prometheus-style scrapes "
        "every 0.15 s, grouped by whether PostgreSQL showed the slow query running)\n\n"
        f"{report.slow_table(effects)}\n"
        "**Catch-up of a cursor KPI** (start: earliest, batch 10000, fresh state dir)\n\n"
        f"{report.catchup_table(catchups)}\n"
        + (render_mariadb(maria) + "\n" if maria else "")
        + "**Targets**\n\n"
        + report.verdicts(sizes, effects, catchups)
        + (report.mariadb_verdicts(maria) if maria else "")
    )


def render_mariadb(maria: list[report.SizeResult]) -> str:
    return (
        f"**Labelled gauge KPI on MariaDB** (the same table and queries; raw fetch and both "
        f"exporters through MariaDB Connector/Python; poll every {INTERVAL} s)\n\n"
        f"{report.gauge_table(maria)}"
    )


if __name__ == "__main__":
    sys.exit(main())
