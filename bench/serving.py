"""A running exporter measured from outside: scrape latency, memory, CPU seconds per poll."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from processes import Exporter, wait_for
from scrape import PLAIN_HEADERS, PROMETHEUS_HEADERS, Scraper, ScrapeStats, sample


@dataclass(frozen=True)
class PollCounters:
    """Where an exporter says how many polls of a KPI succeeded and when the last one ran."""

    count: str
    last: str
    labels: dict[str, str]

    def read(self, text: str) -> tuple[float | None, float | None]:
        return sample(text, self.count, **self.labels), sample(text, self.last, **self.labels)


def counters_for(exporter: Exporter, kpi: str) -> PollCounters:
    if exporter.kind == "kpi-exporter":
        return PollCounters(
            "kpi_exporter_query_duration_seconds_count",
            "kpi_exporter_last_success_timestamp_seconds",
            {"kpi": kpi},
        )
    # query-exporter: its `queries` counter by status, and `query_timestamp`
    return PollCounters("queries_total", "query_timestamp", {"query": kpi})


@dataclass(frozen=True)
class Serving:
    """What one exporter process showed for one workload."""

    gzip: ScrapeStats
    plain: ScrapeStats
    rss_mib: float
    peak_mib: float
    cpu_per_poll: float
    polls: int


def wait_first_poll(exporter: Exporter, kpi: str, timeout: float) -> None:
    scraper = Scraper(exporter.port)
    counters = counters_for(exporter, kpi)

    def polled() -> bool:
        count, _ = counters.read(scraper.text())
        return count is not None and count >= 1

    try:
        wait_for(polled, timeout, f"first successful poll of {kpi}", exporter)
    finally:
        scraper.close()


def measure(exporter: Exporter, kpi: str, interval: float, scrapes: int, polls: int) -> Serving:
    """Scrapes in both forms, memory after them, then CPU over `polls` whole poll intervals."""
    scraper = Scraper(exporter.port)
    try:
        gzip = scraper.series(PROMETHEUS_HEADERS, scrapes)
        plain = scraper.series(PLAIN_HEADERS, scrapes)
        rss, peak = exporter.memory_mib()
        try:
            cpu, counted = cpu_per_poll(
                exporter, scraper, counters_for(exporter, kpi), interval, polls
            )
        except RuntimeError as exc:  # e.g. polls longer than the interval: say so in the table
            print(f"  {exporter.kind}: no CPU figure ({exc})", flush=True)
            cpu, counted = math.nan, 0
    finally:
        scraper.close()
    return Serving(gzip, plain, rss, peak, cpu, counted)


def cpu_per_poll(
    exporter: Exporter, scraper: Scraper, counters: PollCounters, interval: float, polls: int
) -> tuple[float, int]:
    """Process CPU over a window that starts and ends half-way between polls, so it holds
    whole polls only and no scrape; the polls are counted by the exporter's own counter."""
    deadline = time.monotonic() + 6 * interval
    while True:
        count0, last = counters.read(scraper.text())
        if count0 is None or last is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{exporter.kind} does not show its poll counters")
            time.sleep(0.5)  # one scrape without them (seen once on a loaded machine): again
            continue
        start = last + interval / 2  # half-way to the next poll, which count0 does not hold
        if start > time.time() + 0.05:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{exporter.kind} polls do not keep their {interval:g}s interval")
        time.sleep(max(0.1, last + interval - time.time()))
    time.sleep(start - time.time())
    cpu0 = exporter.cpu_seconds()
    time.sleep(polls * interval)
    cpu1 = exporter.cpu_seconds()
    count1, _ = counters.read(scraper.text())
    done = int((count1 or 0) - count0)
    if done <= 0:
        raise RuntimeError(f"{exporter.kind} ran no poll in {polls * interval:g}s")
    return (cpu1 - cpu0) / done, done
