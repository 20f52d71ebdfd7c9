"""Scrapes sent the way Prometheus 2.42 sends them, timed to the last byte, and sample lookup."""

from __future__ import annotations

import http.client
import re
import statistics
import time
from dataclasses import dataclass

# Prometheus 2.42's scrape request headers (scrape/scrape.go, acceptHeader)
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
PLAIN_HEADERS = {"Accept": "text/plain;version=0.0.4", "User-Agent": "kpi-exporter-bench"}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ScrapeStats:
    """Latency over a series of scrapes, and the body size on the wire."""

    median: float
    p99: float
    size: int
    count: int
    gzip: bool


class Scraper:
    """One keep-alive connection to an exporter, as Prometheus keeps one per target."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict[str, str]) -> tuple[float, bytes, str]:
        """(seconds to the last byte, raw body as sent, Content-Encoding)."""
        for attempt in range(2):  # one retry: the server may have closed an idle connection
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
            try:
                started = time.perf_counter()
                self._conn.request("GET", path, headers=headers)
                response = self._conn.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
            return elapsed, body, response.getheader("Content-Encoding", "")
        raise AssertionError("unreachable")

    def series(self, headers: dict[str, str], count: int, warmup: int = 3) -> ScrapeStats:
        """Median and p99 latency over `count` scrapes after `warmup` untimed ones."""
        for _ in range(warmup):
            self.get("/metrics", headers)
        timings = []
        size = 0
        encoding = ""
        for _ in range(count):
            elapsed, body, encoding = self.get("/metrics", headers)
            timings.append(elapsed)
            size = len(body)
        return ScrapeStats(
            statistics.median(timings), percentile(timings, 99), size, count, encoding == "gzip"
        )

    def text(self) -> str:
        return self.get("/metrics", PLAIN_HEADERS)[1].decode("utf-8", "replace")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def percentile(values: list[float], pct: int) -> float:
    """The pct-th percentile (inclusive method: within the observed range)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample named `name` whose labels include `labels`."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        found = dict(_LABEL.findall(match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def count_series(text: str, name: str) -> int:
    """How many samples of metric `name` a text exposition holds."""
    return sum(1 for line in text.splitlines() if line.startswith((name + "{", name + " ")))
