"""Soak: many 1 s KPIs against PostgreSQL under a steady scrape load; schedule, memory, growth.

    .venv/bin/python bench/soak.py [--kpis 500] [--minutes 10] [--scrape-rate 20]

Starts `kpi-exporter run` on a loopback port over a fresh schema, scrapes /metrics the way
Prometheus does (OpenMetrics Accept header, gzip) at a fixed rate, and every second reads each
KPI's `kpi_exporter_last_success_timestamp_seconds`. One KPI (`soak_churn`) returns new label
values on every poll, so series churn runs for the whole soak. Prints a table of figures and
writes them as JSON (--out). Exits 1 when a figure misses the issue's bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_DSN = os.environ.get("KPI_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
CHURN_SERIES = 50
POOL = 8
SCRAPERS = 4


@dataclass
class Sample:
    """One per-second observation of the exporter process."""

    at: float
    rss_mib: float
    threads: int
    connections: int
    churn_series: int
    max_staleness: float


@dataclass
class Figures:
    """What the soak reports."""

    kpis: int
    minutes: float
    scrape_rate: float
    scrapes: int = 0
    scrape_errors: int = 0
    scrape_p50_ms: float = 0.0
    scrape_p99_ms: float = 0.0
    scrape_max_ms: float = 0.0
    polls_per_second: float = 0.0
    schedule_kept_pct: float = 0.0
    slowest_kpi_pct: float = 0.0
    runs_missed_beyond_one_interval: int = 0
    runs_skipped_still_running: int = 0
    polls_observed: int = 0
    kpis_never_polled: int = 0
    gap_p50_s: float = 0.0
    gap_p99_s: float = 0.0
    gap_max_s: float = 0.0
    gaps_over_two_intervals: int = 0
    rss_minute_two_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_growth_pct: float = 0.0
    threads_minute_two: int = 0
    threads_end: int = 0
    threads_max: int = 0
    connections_max: int = 0
    max_connections: int = POOL
    churn_series_max: int = 0
    query_errors: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    load_average_start: float = 0.0
    load_average_end: float = 0.0
    cores: int = os.cpu_count() or 1
    failures: list[str] = field(default_factory=list)


def spec_yaml(dsn: str, kpis: int, state_dir: Path) -> str:
    lines = [
        "exporter:",
        "  labels: {service: soak}",
        f"  state_dir: {state_dir}",
        "databases:",
        "  pg:",
        f"    dsn: {json.dumps(dsn)}",
        f"    max_connections: {POOL}",
        "kpis:",
        "  - name: soak_churn",
        "    type: gauge",
        "    database: pg",
        "    interval: 1s",
        "    labels: [id]",
        "    query: |",
        "      SELECT md5(random()::text) AS id, n AS value",
        f"      FROM generate_series(1, {CHURN_SERIES}) n",
    ]
    for index in range(kpis - 1):
        lines += [
            f"  - name: soak_kpi_{index:03d}",
            "    type: gauge",
            "    database: pg",
            "    interval: 1s",
            "    timeout: 5s",
            "    labels: [shard]",
            f"    params: {{k: {index}}}",
            "    query: SELECT shard, value FROM soak_values WHERE k = :k",
        ]
    return "\n".join(lines) + "\n"


def prepare(schema: str, kpis: int) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".soak_values (k int, shard text, value double precision)'
        )
        conn.execute(
            f'INSERT INTO "{schema}".soak_values '
            "SELECT k, 's' || s, random() * 1000 FROM generate_series(0, %s) k, "
            "generate_series(1, 3) s",
            [kpis],
        )
        conn.execute(f'CREATE INDEX ON "{schema}".soak_values (k)')


def drop(schema: str) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def proc_status(pid: int) -> tuple[float, int]:
    """Resident MiB and thread count from /proc."""
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_connections(pid: int, port: int = 5432) -> int:
    """The process' TCP sockets whose remote port is PostgreSQL's (its pool, nobody else's)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            if remote_port == port and parts[3] == "01" and parts[9] in inodes:
                count += 1
    return count


class Scraper(threading.Thread):
    """Scrapes at a fixed rate as Prometheus does; records latencies and errors."""

    def __init__(self, url: str, rate: float, stop: threading.Event) -> None:
        super().__init__(name="scraper", daemon=True)
        self.url, self.period, self.stop = url, 1.0 / rate, stop
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        session = requests.Session()
        headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        next_at = time.monotonic()
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                response = session.get(self.url, headers=headers, timeout=10, stream=True)
                response.raw.read()  # the body, still compressed: as a scraper would
                if response.status_code != 200:
                    self.errors += 1
                self.latencies.append(time.monotonic() - started)
            except requests.RequestException:
                self.errors += 1
            next_at += self.period
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()  # fell behind: do not burst to catch up


@dataclass(frozen=True)
class Observation:
    """One scrape's view: last-success stamps, successful polls per KPI, churn series, errors."""

    stamps: dict[str, float]
    polls: dict[str, float]
    churn: int
    errors: dict[str, float]


def observe(url: str) -> Observation:
    """Last-success stamp per KPI, the churn KPI's series count, query errors by reason.

    A line scan, not a full parse: the driver shares the machine with the exporter.
    """
    # the scraper's own format, so this read shares its render instead of adding one
    response = requests.get(url, timeout=10, headers={"Accept": PROMETHEUS_ACCEPT})
    response.raise_for_status()
    stamps: dict[str, float] = {}
    polls: dict[str, float] = {}
    churn = 0
    errors: dict[str, float] = {}
    for line in response.text.splitlines():
        if line.startswith("kpi_exporter_last_success_timestamp_seconds{"):
            stamps[line.split('kpi="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("kpi_exporter_query_duration_seconds_count{"):
            polls[line.split('kpi="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("soak_churn{"):
            churn += 1
        elif line.startswith("kpi_exporter_query_errors_total{"):
            value = float(line.rsplit(" ", 1)[1])
            if value:
                reason = line.split('reason="', 1)[1].split('"', 1)[0]
                errors[reason] = errors.get(reason, 0.0) + value
    return Observation(stamps, polls, churn, errors)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def soak(kpis: int, minutes: float, rate: float, out: Path | None) -> Figures:
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    figures = Figures(kpis=kpis, minutes=minutes, scrape_rate=rate)
    prepare(schema, kpis)
    workdir = Path(tempfile.mkdtemp(prefix="kpi-soak-"))
    sep = "&" if "?" in POSTGRES_DSN else "?"
    dsn = f"{POSTGRES_DSN}{sep}options=-csearch_path%3D{schema}"
    config = workdir / "soak.yaml"
    config.write_text(spec_yaml(dsn, kpis, workdir / "state"))
    port = free_port()
    log = (workdir / "exporter.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "exporter.cli", "run", "-c", str(config)),
            *("--listen", f"127.0.0.1:{port}", "--log-level", "warning"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    samples: list[Sample] = []
    gaps: list[float] = []
    advanced: set[str] = set()
    first: tuple[float, dict[str, float]] | None = None
    last_seen: tuple[float, dict[str, float]] | None = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"exporter exited: see {workdir / 'exporter.log'}")
            time.sleep(0.2)
        else:
            raise SystemExit("exporter not ready within 60 s")
        # several scrapers, so one slow answer does not lower the offered rate
        scrapers = [Scraper(url + "/metrics", rate / SCRAPERS, stop) for _ in range(SCRAPERS)]
        for scraper in scrapers:
            scraper.start()
        started = time.monotonic()
        cpu_start = cpu_seconds(proc.pid)
        figures.load_average_start = round(os.getloadavg()[0], 1)
        end = started + minutes * 60
        last: dict[str, float] = {}
        next_sample = started
        while time.monotonic() < end:
            if proc.poll() is not None:
                figures.failures.append(f"exporter exited {proc.returncode}")
                break
            now_wall = time.time()
            seen = observe(url + "/metrics")
            stamps, churn, errors = seen.stamps, seen.churn, seen.errors
            if first is None and time.monotonic() - started >= 60:
                first = (time.monotonic(), seen.polls)  # after a minute of warm-up
            last_seen = (time.monotonic(), seen.polls)
            for kpi, stamp in stamps.items():
                if kpi in last and stamp != last[kpi]:
                    gaps.append(stamp - last[kpi])
                    advanced.add(kpi)
                last[kpi] = stamp
            staleness = max((now_wall - s for s in stamps.values()), default=0.0)
            rss, threads = proc_status(proc.pid)
            samples.append(
                Sample(
                    time.monotonic() - started,
                    rss,
                    threads,
                    postgres_connections(proc.pid),
                    churn,
                    staleness,
                )
            )
            figures.query_errors = errors
            next_sample += 1.0
            time.sleep(max(0.0, next_sample - time.monotonic()))
        figures.cpu_seconds = round(cpu_seconds(proc.pid) - cpu_start, 1)
        figures.load_average_end = round(os.getloadavg()[0], 1)
        if first is not None and last_seen is not None:
            # successful polls per KPI per second from the exporter's own histogram counts
            span = last_seen[0] - first[0]
            rates = [
                (last_seen[1][k] - first[1].get(k, 0.0)) / span
                for k in last_seen[1]
                if k in first[1] and k != "soak_churn"
            ]
            figures.polls_per_second = round(sum(rates), 1)
            figures.schedule_kept_pct = round(100 * sum(rates) / len(rates), 1)
            figures.slowest_kpi_pct = round(100 * min(rates), 1)
        stop.set()
        latencies = []
        for scraper in scrapers:
            scraper.join(timeout=15)
            latencies += scraper.latencies
            figures.scrape_errors += scraper.errors
        figures.scrapes = len(latencies)
        figures.scrape_p50_ms = round(statistics.median(latencies) * 1000, 1) if latencies else 0
        figures.scrape_p99_ms = round(percentile(latencies, 0.99) * 1000, 1)
        figures.scrape_max_ms = round(max(latencies, default=0) * 1000, 1)
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        drop(schema)
    # APScheduler logs a run that started more than its grace time (one interval) late
    text = (workdir / "exporter.log").read_text(errors="replace")
    figures.runs_missed_beyond_one_interval = text.count("was missed by")
    figures.runs_skipped_still_running = text.count("maximum number of running instances")
    figures.kpis_never_polled = kpis - len(advanced)
    summarize(figures, samples, gaps)
    if out is not None:
        data = asdict(figures)
        data["samples"] = [asdict(s) for s in samples[:: max(1, len(samples) // 120)]]
        out.write_text(json.dumps(data, indent=1) + "\n")
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summarize(figures: Figures, samples: list[Sample], gaps: list[float]) -> None:
    figures.polls_observed = len(gaps)
    figures.gap_p50_s = round(statistics.median(gaps), 3) if gaps else 0.0
    figures.gap_p99_s = round(percentile(gaps, 0.99), 3)
    figures.gap_max_s = round(max(gaps, default=0.0), 3)
    # interval 1 s plus its 0.1 s jitter: a gap beyond two of those is a missed schedule
    figures.gaps_over_two_intervals = sum(1 for g in gaps if g > 2.2)
    if samples:
        minute_two = [s for s in samples if 60 <= s.at < 120] or samples[:1]
        figures.rss_minute_two_mib = round(statistics.median(s.rss_mib for s in minute_two), 1)
        figures.rss_end_mib = round(statistics.median(s.rss_mib for s in samples[-30:]), 1)
        figures.rss_growth_pct = round(
            100 * (figures.rss_end_mib / figures.rss_minute_two_mib - 1), 1
        )
        figures.threads_minute_two = max(s.threads for s in minute_two)
        figures.threads_end = samples[-1].threads
        figures.threads_max = max(s.threads for s in samples)
        figures.connections_max = max(s.connections for s in samples)
        figures.churn_series_max = max(s.churn_series for s in samples)
    if figures.runs_missed_beyond_one_interval:
        figures.failures.append(
            f"{figures.runs_missed_beyond_one_interval} runs started more than an interval late"
        )
    if figures.minutes >= 3 and figures.rss_growth_pct > 10:
        figures.failures.append(f"resident memory grew {figures.rss_growth_pct}% after minute 2")
    if figures.threads_end > figures.threads_minute_two:
        figures.failures.append("thread count grew after minute 2")
    if figures.connections_max > figures.max_connections:
        figures.failures.append("more PostgreSQL connections than max_connections")
    if figures.churn_series_max > CHURN_SERIES:
        figures.failures.append("the churning KPI kept stale series")
    if figures.kpis_never_polled:
        figures.failures.append(f"{figures.kpis_never_polled} KPIs never succeeded during the soak")
    if figures.query_errors:
        figures.failures.append(f"query errors: {figures.query_errors}")
    if figures.scrape_errors:
        figures.failures.append(f"{figures.scrape_errors} scrapes failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kpis", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--scrape-rate", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "soak-results.json")
    args = parser.parse_args()
    figures = soak(args.kpis, args.minutes, args.scrape_rate, args.out)
    rows = asdict(figures)
    failures = rows.pop("failures")
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    print("result: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
