"""The exporter's own metrics (a contract: rules and dashboards use these names)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable

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
from prometheus_client.openmetrics.exposition import generate_latest as om_latest

from exporter import __version__
from exporter.sources.base import REASONS

RENDER_REUSE = 1.0  # seconds a rendered body may be served again
QUERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class SelfMetrics:
    """A private registry with the exporter's health series, rendered per scrape (it is small)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._render_lock = threading.Lock()
        self._rendered: dict[bool, tuple[float, bytes]] = {}
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.query_duration = Histogram(
            "kpi_exporter_query_duration_seconds",
            "Time a KPI's query took on its connection, waiting for the connection excluded.",
            ["kpi", "database"],
            buckets=QUERY_BUCKETS,
            registry=r,
        )
        self.query_errors = Counter(
            "kpi_exporter_query_errors",
            "Failed KPI polls by reason: timeout, pool, connection, sql, result.",
            ["kpi", "database", "reason"],
            registry=r,
        )
        self.kpi_up = Gauge(
            "kpi_exporter_kpi_up", "1 if the KPI's last poll succeeded.", ["kpi"], registry=r
        )
        self.last_success = Gauge(
            "kpi_exporter_last_success_timestamp_seconds",
            "When the KPI's last successful poll finished.",
            ["kpi"],
            registry=r,
        )
        self.series = Gauge(
            "kpi_exporter_series", "Series the KPI currently publishes.", ["kpi"], registry=r
        )
        self.database_up = Gauge(
            "kpi_exporter_database_up",
            "1 if the last attempt to reach the database succeeded.",
            ["database"],
            registry=r,
        )
        self.cursor_lag = Gauge(
            "kpi_exporter_cursor_lag_seconds",
            "Now minus the cursor's timestamp, for timestamp cursors.",
            ["kpi"],
            registry=r,
        )
        self.rows_processed = Counter(
            "kpi_exporter_rows_processed",
            "Rows a cursor KPI has applied.",
            ["kpi"],
            registry=r,
        )
        self.state_write_errors = Counter(
            "kpi_exporter_state_write_errors",
            "Failed writes of cursor state (the batch is read again).",
            registry=r,
        )
        self.reload_ok = Gauge(
            "kpi_exporter_config_last_reload_successful",
            "1 if the last spec (re)load succeeded.",
            registry=r,
        )
        self.reload_time = Gauge(
            "kpi_exporter_config_last_reload_success_timestamp_seconds",
            "When the spec was last loaded successfully.",
            registry=r,
        )
        self.config_hash = Gauge(
            "kpi_exporter_config_hash",
            "Hash of the spec files in force (first 52 bits of their SHA-256).",
            registry=r,
        )
        self.scrapes = Counter(
            "kpi_exporter_scrapes", "Answered /metrics requests.", ["format"], registry=r
        )
        self.build = Info("kpi_exporter_build", "Version of kpi-exporter.", registry=r)
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
        """Drop a removed KPI's series."""
        for metric in (self.kpi_up, self.last_success, self.series, self.cursor_lag):
            _remove(metric, kpi)
        _remove(self.rows_processed, kpi)
        _remove(self.query_duration, kpi, database)
        for reason in REASONS:
            _remove(self.query_errors, kpi, database, reason)

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
            body = om_latest(self.registry) if openmetrics else text_latest(self.registry)
            self._rendered[openmetrics] = (now, body)
            return body


def _remove(metric: Gauge | Counter | Histogram, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
