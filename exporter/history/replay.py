"""One KPI's history as timestamped OpenMetrics samples: cursor rows replayed, or `:now` re-run.

A `CursorReplay` reads a cursor KPI's rows with the live query, in cursor order and in
batches, and turns them into the cumulative value per series at every step: the total over
every row whose event time is at or before the step, which is what the live exporter with
`start: earliest` would have shown then. Rows are placed by their event time, not by the
order they arrive in. A step is written once a row whose time is later than the step plus
the reorder window has been read (or the table is exhausted); rows read ahead of it wait,
which is one batch plus the rows inside the reorder window (bounded by TAIL_BATCHES batches),
never the history. A row that arrives after its step was written (more than the reorder
window out of order) is counted at the next step and reported as late.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from exporter.collection.binding import bind_params
from exporter.collection.eventtime import event_seconds
from exporter.collection.polls import complete_rows
from exporter.collection.series import Shape, render_plain
from exporter.collection.totals import LabelKey, SeriesTotal, Totals
from exporter.serving.exposition import family_header, format_value
from exporter.sources.base import Source
from exporter.spec.model import Kpi
from exporter.spec.params import placeholders

TAIL_BATCHES = 8  # rows held behind a row not yet due, in batches, before order is given up


class Grid(Protocol):
    """The instants a replay computes totals at, in increasing order."""

    @property
    def count(self) -> int: ...

    def time(self, index: int) -> float: ...

    def index_at(self, seconds: float) -> int: ...


@dataclass(frozen=True)
class Instants:
    """Any increasing instants (verify's window edges and the moments before them)."""

    times: tuple[float, ...]

    @property
    def count(self) -> int:
        return len(self.times)

    def time(self, index: int) -> float:
        return self.times[index]

    def index_at(self, seconds: float) -> int:
        """The first instant at or after `seconds`."""
        return bisect.bisect_left(self.times, seconds)


@dataclass(frozen=True)
class StepGrid:
    """The instants samples are written at: `first + i * step` for i in [0, count)."""

    first: float
    step: float
    count: int

    @classmethod
    def between(cls, since: float, until: float, step: float) -> StepGrid:
        first = math.ceil(since / step) * step
        last = math.floor(until / step) * step
        return cls(first, step, max(0, round((last - first) / step) + 1))

    def time(self, index: int) -> float:
        return self.first + index * self.step

    def index_at(self, seconds: float) -> int:
        """The first step at or after `seconds` (0 for anything before the grid)."""
        return max(0, math.ceil((seconds - self.first) / self.step))


def stamp(seconds: float) -> str:
    """An OpenMetrics timestamp: seconds, without a fraction when whole."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


class CursorReplay:
    """A cursor counter or histogram replayed from its table; see the module docstring."""

    def __init__(
        self,
        kpi: Kpi,
        metric: str,
        labels: dict[str, str],
        source: Source,
        grid: Grid,
        now: float,
        reorder: float,
    ) -> None:
        assert kpi.cursor is not None and kpi.event_time_column is not None
        self.kpi = kpi
        self.metric = metric
        self.labels = labels
        self.source = source
        self.grid = grid
        self.now = now
        self.reorder = reorder
        self.column = kpi.event_time_column
        self.used = placeholders(kpi.query)
        self.clean = Totals(kpi)  # the rows before the first one not yet due, in cursor order
        self.tail: deque[tuple[int, Sequence[tuple[Any, ...]]]] = deque()  # (step, run) after
        self.lowest: deque[int] = deque()  # increasing: lowest[0] is the tail's lowest step
        self.row_shape: Shape | None = None  # column positions (the same in every batch)
        self.cursor: Any = kpi.initial_cursor
        self.tiebreak: Any = 0
        self.reached = -math.inf  # the event time of the last row read (in cursor order)
        self.newest: float | None = None  # the newest event time counted so far
        self._times: list[tuple[int, float]] = []  # heap: (step, newest time of a run placed)
        self.polled: list[tuple[float, float | None]] = []  # (step time, newest) of lines()
        self.tail_rows = 0
        self.exhausted = False
        self.next_step = 0
        self.rows_read = 0
        self.late_rows = 0
        self.latest_late = 0.0  # seconds the latest-arriving late row was behind
        self.shape = Shape.for_rendering(kpi, metric, labels)
        self._prefixes: dict[LabelKey, list[str]] = {}
        base = metric.removesuffix("_total") if kpi.type == "counter" else metric
        self.header = family_header(base, kpi.type, kpi.help, True)

    def lines(self, end: int) -> list[str]:
        """Sample lines of the steps from the next one up to (not including) `end`; `polled`
        holds each of those steps' time and newest event time."""
        out: list[str] = []
        self.polled = []
        for index in range(self.next_step, min(end, self.grid.count)):
            self._render(index, self.advance(index), out)
            self.polled.append((self.grid.time(index), self.newest))
        return out

    def advance(self, index: int) -> dict[LabelKey, SeriesTotal]:
        """Every series' total at step `index` (the next step or later): the sum, in cursor
        order, over every row up to the step's time, as the live poll adds them up (the same
        float sums, so a live value that has seen more rows never starts below it)."""
        assert index >= self.next_step
        limit = self.grid.time(index) + self.reorder
        while not self.exhausted and self.reached <= limit:
            self._fetch()
        tail, lowest = self.tail, self.lowest
        while tail and tail[0][0] <= index:  # a run of rows all due: onto the clean prefix
            step, run = tail.popleft()
            if lowest[0] == step:
                lowest.popleft()
            self._add(run)
        self.next_step = index + 1
        times = self._times
        while times and times[0][0] <= index:  # the live poll would have read these rows
            newest = heapq.heappop(times)[1]
            self.newest = newest if self.newest is None else max(self.newest, newest)
        if not tail or lowest[0] > index:
            return self.clean.series
        due = [row for step, run in tail if step <= index for row in run]
        if self.tail_rows > TAIL_BATCHES * self.kpi.batch:
            # a row far ahead of its neighbours holds up the clean prefix: to keep memory
            # bounded, add the due rows now, out of cursor order (sums may differ in the last bit)
            self._add(due)
            self.tail, self.lowest, self.tail_rows = deque(), deque(), 0
            for item in tail:
                if item[0] > index:
                    self._append(*item)
            return self.clean.series
        # due rows behind a later one in cursor order: added after the clean prefix, as live
        return {**self.clean.series, **self.clean.stage(self._row_shape(), due, self.now)}

    def _row_shape(self) -> Shape:
        assert self.row_shape is not None
        return self.row_shape

    def _append(self, step: int, run: Sequence[tuple[Any, ...]]) -> None:
        self.tail.append((step, run))
        self.tail_rows += len(run)
        lowest = self.lowest  # the tail's steps' running minimum, for a due row behind the front
        while lowest and lowest[-1] > step:
            lowest.pop()
        lowest.append(step)

    def _add(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.clean.merge(self.clean.stage(self._row_shape(), rows, self.now))
        self.tail_rows -= len(rows)

    def _fetch(self) -> None:
        kpi = self.kpi
        assert kpi.cursor is not None
        params = bind_params(
            kpi,
            self.used,
            self.now,
            cursor=self.cursor,
            tiebreak=self.tiebreak,
            last_success=0.0,
            batch=kpi.batch,
        )
        rows = self.source.query(kpi.query, params, kpi.timeout)
        shape = self.row_shape = Shape(kpi, self.metric, self.labels, rows)
        cursor_index = shape.column(kpi.cursor, "cursor")
        tiebreak_index = shape.column(kpi.tiebreak, "tiebreak") if kpi.tiebreak else None
        kept = complete_rows(kpi, rows.rows, cursor_index, tiebreak_index)
        if len(rows.rows) < kpi.batch:
            self.exhausted = True
        if not kept:
            return
        self.cursor = kept[-1][cursor_index]
        self.tiebreak = kept[-1][tiebreak_index] if tiebreak_index is not None else 0
        self.rows_read += len(kept)
        self._place(kept, shape.column(self.column, "event_time"))
        if self.reached > self.grid.time(self.grid.count - 1) + self.reorder:
            self.exhausted = True  # later rows cannot change a written step

    def _place(self, rows: Sequence[tuple[Any, ...]], time_index: int) -> None:
        """Append the rows, in cursor order, to the tail as runs sharing the step they first
        count at; rows after --until are dropped, rows of a step already written are late."""
        column = self.column
        times = [event_seconds(row[time_index], column) for row in rows]
        self.reached = times[-1]
        index_at, written, last = self.grid.index_at, self.next_step, self.grid.count
        steps = [index_at(t) for t in times]
        start = 0
        while start < len(steps):
            step = steps[start]
            end = start + 1
            while end < len(steps) and steps[end] == step:
                end += 1
            if step < written:  # its step is written already: it counts at the next one
                self.late_rows += end - start
                behind = self.grid.time(written - 1) - min(times[start:end])
                self.latest_late = max(self.latest_late, behind)
                step = written
            if step < last:
                self._append(step, rows[start:end])
                heapq.heappush(self._times, (step, max(times[start:end])))
            start = end

    def _render(self, index: int, series: dict[LabelKey, SeriesTotal], out: list[str]) -> None:
        suffix = " " + stamp(self.grid.time(index)) + "\n"
        counter = self.kpi.type == "counter"
        for key, entry in series.items():
            prefixes = self._prefixes.get(key)
            if prefixes is None:
                prefixes = self._prefixes[key] = self._series_prefixes(key)
            if counter:
                out.append(prefixes[0] + format_value(entry.value) + suffix)
                continue
            cumulative = 0
            for prefix, bucket in zip(prefixes, entry.buckets, strict=False):
                cumulative += bucket
                out.append(prefix + str(cumulative) + suffix)
            out.append(prefixes[-2] + str(entry.count) + suffix)
            out.append(prefixes[-1] + format_value(entry.value) + suffix)

    def _series_prefixes(self, key: LabelKey) -> list[str]:
        """`name{labels} ` of each sample line of one series, rendered once."""
        shape, metric = self.shape, self.metric
        if self.kpi.type == "counter":
            return [f"{metric}{shape.labels(key)} "]
        bounds = ['le="' + format_value(b) + '"' for b in self.kpi.buckets or []] + ['le="+Inf"']
        buckets = [f"{metric}_bucket{shape.labels(key, le)} " for le in bounds]
        labels = shape.labels(key)
        return [*buckets, f"{metric}_count{labels} ", f"{metric}_sum{labels} "]


class QueryReplay:
    """A KPI whose query uses `:now`, re-run at each step with `:now` set to the step's time
    and `:last_success` to the step before (the live poll's previous success)."""

    def __init__(
        self, kpi: Kpi, metric: str, labels: dict[str, str], source: Source, grid: StepGrid
    ) -> None:
        self.kpi = kpi
        self.metric = metric
        self.labels = labels
        self.source = source
        self.grid = grid
        self.used = placeholders(kpi.query)
        self.next_step = 0
        self.rows_read = 0
        self.late_rows = 0
        self.latest_late = 0.0
        self.polled: list[tuple[float, float | None]] = []  # (step time, None): no event time
        base = metric.removesuffix("_total") if kpi.type == "counter" else metric
        self.header = family_header(base, kpi.type, kpi.help, True)

    def lines(self, end: int) -> list[str]:
        out: list[str] = []
        self.polled = []
        grid = self.grid
        for index in range(self.next_step, min(end, grid.count)):
            at = grid.time(index)
            params = bind_params(
                self.kpi,
                self.used,
                at,
                cursor=None,
                tiebreak=None,
                last_success=at - grid.step,
                batch=self.kpi.batch,
            )
            rows = self.source.query(self.kpi.query, params, self.kpi.timeout)
            self.rows_read += len(rows.rows)
            snapshot, _ = render_plain(self.kpi, self.metric, self.labels, rows, at)
            suffix = " " + stamp(grid.time(index)) + "\n"
            for line in snapshot.openmetrics.decode("utf-8").splitlines():
                if line and not line.startswith("#"):
                    out.append(line + suffix)
            self.polled.append((at, None))
            self.next_step = index + 1
        return out
