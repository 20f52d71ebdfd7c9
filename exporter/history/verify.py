"""`kpi-exporter verify`: what Prometheus stored against what the database holds, by window.

For each cursor KPI with an event time, and each of the last N closed windows, Prometheus'
counter difference between the window's edges (the raw samples, no extrapolation) is compared
with the count or sum of the rows whose event time falls in the window, series by series.
The live exporter counts a row some time after the row's own time: up to `settle`, a poll
period (two, with jitter and the poll's run) and a scrape later. Rows that recent at an edge
may fall on either side of it, so a difference within the rows of that lag before each edge
is explained (in flight), not drift; so is a window where the counter reset or the series
first appeared while the database already held rows of it, or where Prometheus holds no
sample near the window's end (a scrape gap: the value there is unknown).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from exporter.collection.eventtime import event_seconds
from exporter.collection.totals import LabelKey, Totals
from exporter.history.replay import CursorReplay, Instants
from exporter.serving.exposition import format_value
from exporter.sources.base import Source
from exporter.sources.registry import open_source
from exporter.spec.model import Kpi, Spec

LOOKBACK = 300.0  # Prometheus' default: a sample this old still answers at a window's edge
ROUNDING = 1e-9  # a relative difference below this is float addition order, not drift
Sample = tuple[float, float]


class SampleSource(Protocol):
    def samples(
        self, selector: str, seconds: float, at: float
    ) -> list[tuple[dict[str, str], list[Sample]]]: ...


@dataclass(frozen=True)
class Cell:
    """One window of one series: what Prometheus stored, what the database counts, the drift."""

    kpi: str
    start: float
    end: float
    series: dict[str, str]
    stored: float
    counted: float
    drift: float
    note: str  # why a difference is not drift, or "" when there is none


def lag(spec: Spec, kpi: Kpi) -> float:
    """How long after its event time a row may reach Prometheus through the live exporter."""
    return (kpi.settle or 0.0) + 2 * kpi.period + spec.exporter.scrape_interval


def window_edges(now: float, windows: int, window: float) -> list[float]:
    """The edges of the last `windows` closed windows, aligned to multiples of `window`."""
    end = math.floor(now / window) * window
    return [end - (windows - i) * window for i in range(windows + 1)]


def verify(
    spec: Spec,
    prometheus: SampleSource,
    *,
    now: float,
    windows: int,
    window: float,
    only: Sequence[str] = (),
) -> tuple[list[Cell], list[str]]:
    """Every window-by-series cell of every KPI with an event time, and a line per KPI skipped."""
    edges = window_edges(now, windows, window)
    cells: list[Cell] = []
    skipped: list[str] = []
    sources: dict[str, Source] = {}
    try:
        for kpi in spec.kpis:
            if only and kpi.name not in only:
                continue
            if kpi.cursor is None or kpi.event_time_column is None:
                skipped.append(f"skipped {kpi.name}: not a cursor KPI with an event_time")
                continue
            for name in spec.databases_of(kpi):  # several: each against its own series
                if name not in sources:
                    sources[name] = open_source(
                        name, spec.databases[name], spec.exporter.pool_timeout
                    )
                database = _database_totals(spec, kpi, sources[name], edges, now)
                only_this = {spec.exporter.database_label: name} if kpi.spans_databases else {}
                cells.extend(_compare(spec, kpi, prometheus, edges, database, only_this))
    finally:
        for source in sources.values():
            source.close()
    return cells, skipped


class _WindowTotals(CursorReplay):
    """Every row of a cursor KPI, read once and added into the interval between instants its
    event time falls in. Unlike a backfill it assumes no order (a row inserted late into a
    past window is exactly what verify must place there), so it reads the whole table unless
    the cursor is the event time; memory is instants times series."""

    def __init__(self, spec: Spec, kpi: Kpi, source: Source, instants: Instants, now: float):
        ordered = kpi.event_time_column == kpi.cursor
        metric = spec.metric_name(kpi)
        super().__init__(kpi, metric, {}, source, instants, now, 0.0 if ordered else math.inf)
        self.deltas: dict[int, Totals] = {}

    def _place(self, rows: Sequence[tuple[Any, ...]], time_index: int) -> None:
        times = [event_seconds(row[time_index], self.column) for row in rows]
        self.reached = times[-1]
        groups: dict[int, list[tuple[Any, ...]]] = {}
        for moment, row in zip(times, rows, strict=True):
            groups.setdefault(self.grid.index_at(moment), []).append(row)
        for index, group in groups.items():
            if index < self.grid.count:
                delta = self.deltas.setdefault(index, Totals(self.kpi))
                delta.merge(delta.stage(self._row_shape(), group, self.now))

    def cumulative(self) -> dict[float, dict[LabelKey, float]]:
        """Per instant, each series' count (histograms) or value (counters) up to it."""
        while not self.exhausted:
            self._fetch()
        histogram = self.kpi.type == "histogram"
        running: dict[LabelKey, float] = {}
        totals: dict[float, dict[LabelKey, float]] = {}
        for index in range(self.grid.count):
            delta = self.deltas.get(index)
            for key, entry in delta.series.items() if delta else ():
                amount = float(entry.count) if histogram else entry.value
                running[key] = running.get(key, 0.0) + amount
            totals[self.grid.time(index)] = dict(running)
        return totals


def _database_totals(
    spec: Spec, kpi: Kpi, source: Source, edges: list[float], now: float
) -> dict[float, dict[LabelKey, float]]:
    """Per series, the rows' count or value up to each edge and up to `lag` before it."""
    allowance = lag(spec, kpi)
    instants = Instants(tuple(sorted({*edges, *(e - allowance for e in edges)})))
    return _WindowTotals(spec, kpi, source, instants, now).cumulative()


def _compare(
    spec: Spec,
    kpi: Kpi,
    prometheus: SampleSource,
    edges: list[float],
    database: dict[float, dict[LabelKey, float]],
    matchers: dict[str, str],
) -> list[Cell]:
    """The cells of one KPI's series on one database (`matchers` select its database's series
    in Prometheus when the KPI spans several)."""
    metric = spec.metric_name(kpi) + ("_count" if kpi.type == "histogram" else "")
    # database names are identifiers: nothing to escape
    exact = "".join(f', {name}="{value}"' for name, value in sorted(matchers.items()))
    selector = f"{metric}{{{spec.exporter.rule_selector()}{exact}}}"
    stored = prometheus.samples(selector, edges[-1] - edges[0] + LOOKBACK, edges[-1])
    allowance = lag(spec, kpi)
    keys = {key for totals in database.values() for key in totals}
    by_key: dict[LabelKey, list[tuple[dict[str, str], list[Sample]]]] = {}
    for labels, samples in stored:
        labels.pop("__name__", None)
        by_key.setdefault(tuple(labels.get(n, "") for n in kpi.labels), []).append(
            (labels, samples)
        )
    cells: list[Cell] = []
    for key in sorted(keys | by_key.keys()):
        series = by_key.get(key) or [({**matchers, **dict(zip(kpi.labels, key, strict=True))}, [])]
        for labels, samples in series:
            for start, end in itertools.pairwise(edges):

                def total(at: float, key: LabelKey = key) -> float:
                    return database[at].get(key, 0.0)

                counted = total(end) - total(start)
                in_flight = (
                    total(start) - total(start - allowance),
                    total(end) - total(end - allowance),
                )
                cells.append(
                    _cell(kpi.name, start, end, labels, samples, counted, total(start), in_flight)
                )
    return cells


def _cell(
    kpi: str,
    start: float,
    end: float,
    labels: dict[str, str],
    samples: list[Sample],
    counted: float,
    before: float,
    in_flight: tuple[float, float],
) -> Cell:
    """One window of one series; `before` is the database's total at the window's start."""
    at_start = _last_at(samples, start)
    at_end = _last_at(samples, end)
    inside = [value for t, value in samples if start < t <= end]
    note = ""
    if samples and at_end is None:
        note = "no sample within 5m before the window's end (Prometheus did not scrape then)"
    elif at_start is None and inside and before > 0:
        note = "series first stored in this window (the exporter started or was not scraped)"
    reset = any(b < a for a, b in zip([at_start or 0.0, *inside], inside, strict=False))
    stored = _increase([at_start or 0.0, *inside]) if reset else (at_end or 0.0) - (at_start or 0.0)
    if reset and not note:
        note = "counter reset in this window (an exporter restart without its state)"
    difference = stored - counted
    if abs(difference) <= ROUNDING * max(abs(stored), abs(counted), 1.0):
        difference = 0.0  # the same rows added in another order
    drift = 0.0
    if not note:
        late_at_start, late_at_end = in_flight
        if difference > late_at_start:
            drift = difference - late_at_start
        elif difference < -late_at_end:
            drift = difference + late_at_end
        elif difference:
            note = "rows in flight at the window's edges (counted within the exporter's lag)"
    return Cell(kpi, start, end, labels, stored, counted, drift, note)


def _last_at(samples: list[Sample], at: float) -> float | None:
    """The value Prometheus answers at `at`: the last sample at or before it (within lookback)."""
    found = None
    for t, value in samples:
        if t > at:
            break
        if t >= at - LOOKBACK:
            found = value
    return found


def _increase(values: list[float]) -> float:
    """The increase over consecutive samples, a drop counting as a reset (as Prometheus does)."""
    return sum(b - a if b >= a else b for a, b in itertools.pairwise(values))


def render(cells: list[Cell], skipped: list[str], tolerance: float, fmt: str) -> str:
    failing = [c for c in cells if abs(c.drift) > tolerance]
    if fmt == "json":
        document = {
            "tolerance": tolerance,
            "drifting": len(failing),
            "cells": [asdict(c) for c in cells],
            "skipped": skipped,
        }
        return json.dumps(document, indent=2) + "\n"
    lines = [
        f"{'window (UTC)':<33} {'kpi':<24} {'stored':>12} {'database':>12} {'drift':>10}  series"
    ]
    for cell in cells:
        window = f"{_utc(cell.start)} .. {_utc(cell.end)[11:]}"
        flag = "DRIFT " if abs(cell.drift) > tolerance else ""
        lines.append(
            f"{window:<33} {cell.kpi:<24} {format_value(cell.stored):>12} "
            f"{format_value(cell.counted):>12} {format_value(cell.drift):>10}  "
            f"{_labels(cell.series)} {flag}{cell.note}".rstrip()
        )
    lines.extend(skipped)
    windows = len({(c.start, c.end) for c in cells})
    lines.append(
        f"{len(failing)} of {len(cells)} cells ({windows} windows) drift beyond {tolerance:g}"
    )
    return "\n".join(lines) + "\n"


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
