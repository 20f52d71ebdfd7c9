"""Accumulated series of cursor KPIs: counter totals and histogram buckets, and their rendering."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import reduce
from operator import add, itemgetter
from typing import Any

from exporter.collection.series import ResultError, Shape, number
from exporter.serving.exposition import family_header, format_value
from exporter.serving.snapshot import Snapshot
from exporter.spec.model import Kpi

LabelKey = tuple[str, ...]
_NUMBERS = frozenset((float, int, Decimal, bool))


@dataclass(slots=True)
class SeriesTotal:
    """One series' running total: counter value, or histogram bucket counts with sum and count."""

    created: float
    value: float = 0.0  # counter total, or histogram sum
    count: int = 0  # histogram observations
    buckets: list[int] = field(default_factory=list)  # per bucket (not cumulative), +Inf last

    def copy(self) -> SeriesTotal:
        return SeriesTotal(self.created, self.value, self.count, list(self.buckets))


class Totals:
    """Every series of one cursor KPI; changes are staged, then merged once stored."""

    def __init__(self, kpi: Kpi, series: Mapping[LabelKey, SeriesTotal] | None = None) -> None:
        self.kpi = kpi
        self.bounds: list[float] = list(kpi.buckets or [])
        self.series: dict[LabelKey, SeriesTotal] = dict(series or {})

    def stage(
        self, shape: Shape, rows: Iterable[Sequence[Any]], now: float
    ) -> dict[LabelKey, SeriesTotal]:
        """The series that `rows` change, as new copies; `self.series` is left untouched."""
        if not isinstance(rows, Sequence):
            rows = list(rows)
        staged = self._stage_columns(shape, rows, now)
        if staged is None:
            staged = self._stage_rows(shape, rows, now)
        if len(self.series.keys() | staged.keys()) > self.kpi.max_series:
            raise ResultError(f"more than max_series={self.kpi.max_series} series; not applied")
        return staged

    def _entry(self, key: LabelKey, now: float) -> SeriesTotal:
        current = self.series.get(key)
        if current is not None:
            return current.copy()
        histogram = self.kpi.type == "histogram"
        return SeriesTotal(created=now, buckets=[0] * (len(self.bounds) + 1) if histogram else [])

    def _stage_columns(
        self, shape: Shape, rows: Sequence[Sequence[Any]], now: float
    ) -> dict[LabelKey, SeriesTotal] | None:
        """The common batch (string labels, finite numbers) a column at a time, with the same
        result as `_stage_rows` down to the order of float additions; None when it does not
        apply, so `_stage_rows` handles (or reports) the batch."""
        if not rows:
            return {}
        histogram = self.kpi.type == "histogram"
        columns = []
        for index in shape.label_index:
            column = list(map(itemgetter(index), rows))
            if set(map(type, column)) != {str}:
                return None  # NULLs, numbers and bytes have their own label rendering
            columns.append(column)
        values: list[float] | None = None
        if shape.value_index is not None:
            raw = list(map(itemgetter(shape.value_index), rows))
            if not set(map(type, raw)) <= _NUMBERS:
                return None  # NULL values are skipped and non-numbers refused, row by row
            try:
                values = list(map(float, raw))
            except (OverflowError, ValueError):
                return None  # an int beyond 1e308, a signaling NaN: `_stage_rows` reports it
            total = sum(values)
            if total != total or total in (math.inf, -math.inf):
                return None
            if not histogram and min(values) < 0:
                return None
        # One label: the strings themselves are the keys (their hashes are cached, tuples' not).
        single = len(columns) == 1
        keys: list[Any]
        if single:
            keys = columns[0]
        else:
            keys = list(zip(*columns, strict=True)) if columns else [()] * len(rows)
        entries: dict[Any, SeriesTotal] = {}
        if values is None:
            for key, count in Counter(keys).items():
                entry = entries[key] = self._entry((key,) if single else key, now)
                entry.value += float(count)  # each row counts 1: exact below 2**53
        else:
            groups: dict[Any, list[float]] = {}
            for key, amount in zip(keys, values, strict=True):
                group = groups.get(key)
                if group is None:
                    groups[key] = [amount]
                else:
                    group.append(amount)
            for key, group in groups.items():
                entry = entries[key] = self._entry((key,) if single else key, now)
                entry.value = reduce(add, group, entry.value)  # in row order, as rows add up
                if histogram:
                    entry.count += len(group)
                    ordered = sorted(group)
                    below = 0
                    for slot, bound in enumerate(self.bounds):
                        upto = bisect.bisect_right(ordered, bound)  # values <= bound
                        entry.buckets[slot] += upto - below
                        below = upto
                    entry.buckets[-1] += len(ordered) - below
        if single:
            return {(key,): entry for key, entry in entries.items()}
        return entries

    def _stage_rows(
        self, shape: Shape, rows: Iterable[Sequence[Any]], now: float
    ) -> dict[LabelKey, SeriesTotal]:
        """The general path, one row at a time."""
        staged: dict[LabelKey, SeriesTotal] = {}
        value_index = shape.value_index
        value_column = self.kpi.value_column or ""
        histogram = self.kpi.type == "histogram"
        nbuckets = len(self.bounds) + 1
        for row in rows:
            if value_index is None:
                amount = 1.0
            else:
                raw = row[value_index]
                if raw is None:
                    continue  # a NULL value is skipped; its row still moves the cursor
                amount = number(raw, value_column)
                if math.isnan(amount) or math.isinf(amount):
                    raise ResultError(f"value {amount!r} cannot be accumulated", value_column)
                if amount < 0 and not histogram:
                    raise ResultError(
                        f"negative value {amount!r} would make the counter go down", value_column
                    )
            key = shape.label_values(row)
            entry = staged.get(key)
            if entry is None:
                current = self.series.get(key)
                if current is not None:
                    entry = current.copy()
                else:
                    entry = SeriesTotal(created=now, buckets=[0] * nbuckets if histogram else [])
                staged[key] = entry
            entry.value += amount
            if histogram:
                entry.count += 1
                entry.buckets[bisect.bisect_left(self.bounds, amount)] += 1
        return staged

    def merge(self, staged: Mapping[LabelKey, SeriesTotal]) -> None:
        self.series.update(staged)

    def render(self, shape: Shape, taken_at: float) -> Snapshot:
        """Both exposition formats; OpenMetrics with `_created` per series. The text format has
        none: Prometheus would store each as one more series, and no query reads them."""
        kpi, metric = self.kpi, shape.metric
        base = metric.removesuffix("_total")
        text: list[str] = []
        om: list[str] = []
        if kpi.type == "counter":
            text.append(family_header(metric, "counter", kpi.help, False))
            om.append(family_header(base, "counter", kpi.help, True))
            for key, entry in self.series.items():
                labels = shape.labels(key)
                sample = f"{metric}{labels} {format_value(entry.value)}\n"
                text.append(sample)
                om.append(sample)
                om.append(f"{base}_created{labels} {format_value(entry.created)}\n")
        else:
            header = family_header(metric, "histogram", kpi.help, False)
            text.append(header)
            om.append(family_header(metric, "histogram", kpi.help, True))
            les = [format_value(b) for b in self.bounds] + ["+Inf"]
            for key, entry in self.series.items():
                labels = shape.labels(key)
                cumulative = 0
                lines = []
                for le, bucket in zip(les, entry.buckets, strict=True):
                    cumulative += bucket
                    bucket_labels = shape.labels(key, f'le="{le}"')
                    lines.append(f"{metric}_bucket{bucket_labels} {cumulative}\n")
                lines.append(f"{metric}_count{labels} {entry.count}\n")
                lines.append(f"{metric}_sum{labels} {format_value(entry.value)}\n")
                text.extend(lines)
                om.extend(lines)
                om.append(f"{metric}_created{labels} {format_value(entry.created)}\n")
        if kpi.type == "counter":
            total = sum(entry.value for entry in self.series.values())
        else:
            total = sum(entry.count for entry in self.series.values())
        return Snapshot.build(
            kpi.name, len(self.series), taken_at, "".join(text), "".join(om), float(total)
        )
