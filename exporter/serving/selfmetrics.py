"""The exporter's own metrics, registered under the names and help texts of
conventions.SelfMetric (a contract: rules and dashboards query the same names)."""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client import generate_latest as text_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as om_latest
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.conventions import REASONS
from exporter.conventions import SelfMetric as M

RENDER_REUSE = 1.0  # seconds a rendered body may be served again
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class SelfMetrics:
    """A private registry with the exporter's health series, rendered per scrape (it is small)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._render_lock = threading.Lock()
        self._rendered: dict[bool, tuple[float, bytes]] = {}
        self._text_view = _WithoutCreated(self.registry)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.query_duration = Histogram(
            M.QUERY_DURATION.family,
            M.QUERY_DURATION.help,
            ["kpi", "database"],
            buckets=QUERY_BUCKETS,
            registry=r,
        )
        self.query_errors = _counter(M.QUERY_ERRORS, r, "kpi", "database", "reason")
        self.kpi_up = _gauge(M.KPI_UP, r, "kpi", "database")
        self.last_success = _gauge(M.LAST_SUCCESS, r, "kpi", "database")
        self.series = _gauge(M.SERIES, r, "kpi", "database")
        self.database_up = _gauge(M.DATABASE_UP, r, "database")
        self.cursor_lag = _gauge(M.CURSOR_LAG, r, "kpi", "database")
        self.rows_processed = _counter(M.ROWS_PROCESSED, r, "kpi", "database")
        self.state_write_errors = _counter(M.STATE_WRITE_ERRORS, r)
        self.reload_ok = _gauge(M.RELOAD_OK, r)
        self.reload_time = _gauge(M.RELOAD_TIME, r)
        self.config_hash = _gauge(M.CONFIG_HASH, r)
        self.scrapes = _counter(M.SCRAPES, r, "format")
        self.build = Info(M.BUILD.family, M.BUILD.help, registry=r)
        self.build.info({"version": __version__})

    def loaded(self, digest: str) -> None:
        """A spec was loaded: record its hash and the success."""
        self.config_hash.set(int(digest[:13], 16))
        self.reload_ok.set(1)
        self.reload_time.set(time.time())

    def declare(self, kpis: Iterable[tuple[str, str]]) -> None:
        """Create every (kpi, database) series at zero so rates and alerts start from zero."""
        for kpi, database in kpis:
            for reason in REASONS:
                self.query_errors.labels(kpi, database, reason)
            self.query_duration.labels(kpi, database)

    def forget(self, kpi: str, database: str) -> None:
        """Drop the series of a KPI no longer polled on `database` (every per-KPI family is
        labelled by both, so a KPI that loses one database keeps the others' series)."""
        for metric in (self.kpi_up, self.last_success, self.series, self.cursor_lag):
            _remove(metric, kpi, database)
        _remove(self.rows_processed, kpi, database)
        _remove(self.query_duration, kpi, database)
        for reason in REASONS:
            _remove(self.query_errors, kpi, database, reason)

    def forget_database(self, database: str) -> None:
        """Drop the series of a database no longer in the spec."""
        _remove(self.database_up, database)

    def invalidate(self) -> None:
        """Forget the reused renders: after a reload the next scrape shows the new state."""
        with self._render_lock:
            self._rendered.clear()

    def render(self, openmetrics: bool) -> bytes:
        """The registry's exposition, rebuilt at most once per RENDER_REUSE seconds per format.

        With hundreds of KPIs a render costs a tenth of a second or more; scrapes arriving
        faster than that (several Prometheus replicas, a load test) share one render.
        """
        with self._render_lock:
            now = time.monotonic()
            cached = self._rendered.get(openmetrics)
            if cached is not None and now - cached[0] < RENDER_REUSE:
                return cached[1]
            body = om_latest(self.registry) if openmetrics else text_latest(self._text_view)
            self._rendered[openmetrics] = (now, body)
            return body


class _WithoutCreated(Collector):
    """A registry as the text format shows it: without `_created` samples, which Prometheus
    would store as one more series per counter and histogram series (OpenMetrics keeps them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            created = family.name + "_created"
            if any(sample.name == created for sample in family.samples):
                family = copy.copy(family)
                family.samples = [s for s in family.samples if s.name != created]
            yield family


def _remove(metric: Gauge | Counter | Histogram, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


def _gauge(metric: M, registry: CollectorRegistry, *labels: str) -> Gauge:
    return Gauge(metric.family, metric.help, labels, registry=registry)


def _counter(metric: M, registry: CollectorRegistry, *labels: str) -> Counter:
    return Counter(metric.family, metric.help, labels, registry=registry)
