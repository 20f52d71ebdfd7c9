"""promtool input series shaped like the demo simulator's traffic.

The simulator (exporter.demo) writes a span of its traffic, incidents and outages included,
into an in-memory SQLite database; plain SQL written here (not the exporter's queries or code)
counts the rows each scrape would have seen. Every label set is present from the first scrape
at 0, as on an exporter that has run for a while."""

from __future__ import annotations

import bisect
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from exporter import demo

SCRAPE = 15.0  # seconds between scrapes, as in the demo's Prometheus
TICK = 5.0  # seconds of traffic the simulator inserts at a time
LABELS = {"instance": "demo:9091", "job": "kpi-exporter", "service": "demo"}


@dataclass(frozen=True)
class Counter:
    """A counter counted from a table: label name -> column, the rows' time, a filter, and how
    far behind a scrape the KPI's rows are (poll interval, plus its settle time)."""

    metric: str
    table: str
    labels: dict[str, str]
    time: str
    where: str = "1 = 1"
    lag: float = 10.0


COUNTERS = (
    Counter(
        "payment_failures_total",
        "payments",
        {"payment_method": "payment_method", "plan": "plan", "error_type": "error_type"},
        "created_at",
        "status = 'failed'",
    ),
    Counter(
        "generation_success_total",
        "generations",
        {"type": "type"},
        "created_at",
        "status = 'success'",
    ),
    Counter(
        "generation_failure_total",
        "generations",
        {"type": "type", "error_type": "error_type"},
        "created_at",
        "status = 'failure'",
    ),
    Counter(
        "errors_total",
        "errors",
        {"error_type": "error_type", "severity": "severity", "component": "service"},
        "created_at",
    ),
    Counter(
        "queue_failures_total",
        "queue_jobs",
        {"queue_name": "queue_name"},
        "finished_at",
        "status = 'failed'",
        lag=20.0,
    ),
    Counter(
        "http_requests_total",
        "http_requests",
        {"route": "route", "status_code": "status_code", "component": "service"},
        "created_at",
    ),
)


def simulate(since: float, until: float, seed: int) -> sqlite3.Connection:
    """The simulator's traffic from epoch `since` to `until`, TICK seconds at a time."""
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    rng = random.Random(seed)  # nosec B311  # simulated traffic
    at = since
    while at < until:
        at = min(at + TICK, until)
        demo.insert_activity(conn, "sqlite", at, rng, TICK)
    return conn


def _scrapes(since: float, until: float) -> list[float]:
    return [since + n * SCRAPE for n in range(int((until - since) // SCRAPE) + 1)]


def _series(metric: str, labels: dict[str, str], values: list[float]) -> dict[str, str]:
    text = ", ".join(f'{k}="{v}"' for k, v in sorted({**LABELS, **labels}.items()))
    return {"series": f"{metric}{{{text}}}", "values": " ".join(f"{v:g}" for v in values)}


def _cumulative(times: list[float], scrapes: list[float], lag: float) -> list[float]:
    return [float(bisect.bisect_right(times, at - lag)) for at in scrapes]


def counter_series(conn: sqlite3.Connection, since: float, until: float) -> list[dict[str, str]]:
    """Every COUNTERS label set's value at each scrape of [since, until]."""
    scrapes = _scrapes(since, until)
    out = []
    for counter in COUNTERS:
        columns = ", ".join(counter.labels.values())
        rows = conn.execute(
            # identifiers from COUNTERS above, no input
            f"SELECT {columns}, {counter.time} FROM {counter.table} "  # nosec B608
            f"WHERE {counter.where} AND {counter.time} IS NOT NULL ORDER BY {counter.time}"
        ).fetchall()
        times: dict[tuple, list[float]] = defaultdict(list)
        for *values, at in rows:
            times[tuple(str(v) for v in values)].append(at)
        for values, at_times in sorted(times.items()):
            labels = dict(zip(counter.labels, values, strict=True))
            out.append(_series(counter.metric, labels, _cumulative(at_times, scrapes, counter.lag)))
    return out


def histogram_series(
    conn: sqlite3.Connection, since: float, until: float, buckets: list[float]
) -> list[dict[str, str]]:
    """http_request_duration_seconds_bucket by route at each scrape, `le` written as the
    exporter writes it (2.0) and +Inf."""
    scrapes = _scrapes(since, until)
    rows = conn.execute(
        "SELECT route, duration_seconds, created_at FROM http_requests ORDER BY created_at"
    ).fetchall()
    bounds = [(bound, repr(float(bound))) for bound in buckets]
    times: dict[tuple[str, str], list[float]] = {
        (route, le): []
        for (route,) in set((r[0],) for r in rows)
        for le in [*dict(bounds).values(), "+Inf"]
    }
    for route, seconds, at in rows:
        for bound, le in bounds:
            if seconds <= bound:
                times[(route, le)].append(at)
        times[(route, "+Inf")].append(at)
    return [
        _series(
            "http_request_duration_seconds_bucket",
            {"route": route, "le": le},
            _cumulative(at_times, scrapes, 10.0),
        )
        for (route, le), at_times in sorted(times.items())
    ]


def up_series(since: float, until: float) -> list[dict[str, str]]:
    return [_series("up", {}, [1.0] * len(_scrapes(since, until)))]
