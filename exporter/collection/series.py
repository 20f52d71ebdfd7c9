"""Rows → validated series: label and value columns checked, then rendered into a Snapshot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

from exporter.serving.exposition import escape_label_value, family_header, format_value
from exporter.serving.snapshot import Snapshot
from exporter.sources.base import Rows
from exporter.spec.model import Kpi


class ResultError(Exception):
    """A query's result does not fit its KPI; the KPI fails, nothing is half-published."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class Shape:
    """How one KPI's rows map to series: column positions and the rendered label prefix."""

    def __init__(self, kpi: Kpi, metric: str, const_labels: dict[str, str], rows: Rows) -> None:
        self.kpi = kpi
        self.metric = metric
        index = {name: i for i, name in enumerate(rows.columns)}
        self.label_index = [self._column(index, name, "label") for name in kpi.labels]
        value = kpi.value_column
        self.value_index = self._column(index, value, "value") if value else None
        self.index = index
        self.const = [f'{k}="{escape_label_value(v)}"' for k, v in sorted(const_labels.items())]
        self.label_prefixes = [f'{name}="' for name in kpi.labels]

    @classmethod
    def for_rendering(cls, kpi: Kpi, metric: str, const_labels: dict[str, str]) -> Shape:
        """A shape for rendering stored totals before any query has answered."""
        columns = (*kpi.labels, *([kpi.value_column] if kpi.value_column else []))
        return cls(kpi, metric, const_labels, Rows(tuple(columns), ()))

    def _column(self, index: dict[str, int], name: str, role: str) -> int:
        if name not in index:
            found = ", ".join(index) or "none"
            raise ResultError(
                f"{role} column {name!r} is missing from the result (columns: {found})", name
            )
        return index[name]

    def column(self, name: str, role: str) -> int:
        return self._column(self.index, name, role)

    def label_values(self, row: Sequence[Any]) -> tuple[str, ...]:
        return tuple(label_text(row[i]) for i in self.label_index)

    def labels(self, values: Sequence[str], extra: str = "") -> str:
        """Rendered `{…}` for one series: constant labels, KPI labels, then `extra`."""
        parts = [*self.const]
        parts.extend(
            p + escape_label_value(v) + '"'
            for p, v in zip(self.label_prefixes, values, strict=True)
        )
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""


def label_text(value: Any) -> str:
    """A label value from a result cell: NULL is the empty value, bytes are decoded."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def number(value: Any, column: str) -> float:
    """A sample value from a result cell; anything but a number is a result error."""
    kind = type(value)
    if kind is float or kind is int or kind is Decimal or kind is bool:
        try:
            return float(value)
        except (OverflowError, ValueError):  # an int beyond 1e308, a signaling NaN Decimal
            raise ResultError(
                f"value column {column!r} holds {str(value)[:40]!r}, beyond a float", column
            ) from None
    raise ResultError(
        f"value column {column!r} holds {kind.__name__} {str(value)[:40]!r}, not a number", column
    )


def render_plain(
    kpi: Kpi, metric: str, const_labels: dict[str, str], rows: Rows, taken_at: float
) -> tuple[Snapshot, int]:
    """A gauge or database-kept counter: one series per row. Returns (snapshot, rows skipped)."""
    if kpi.type == "histogram":
        return render_preaggregated(kpi, metric, const_labels, rows, taken_at)
    shape = Shape(kpi, metric, const_labels, rows)
    if len(rows.rows) > kpi.max_series:
        raise ResultError(
            f"{len(rows.rows)} rows exceed max_series={kpi.max_series}; nothing was published"
        )
    lines = [family_header(metric, kpi.type, kpi.help, openmetrics=False)]
    skipped = 0
    fast = _fast_samples(shape, rows.rows, counter=kpi.type == "counter")
    if fast is not None:
        samples, total = fast
        lines.append(samples)
        seen_count = len(rows.rows)
    else:
        seen_count, total = _samples(shape, rows, kpi, lines)
        skipped = len(rows.rows) - seen_count
    text = "".join(lines)
    om = None
    if kpi.type == "counter":
        om_header = family_header(metric.removesuffix("_total"), "counter", kpi.help, True)
        om = om_header + text[len(lines[0]) :]
    return Snapshot.build(kpi.name, seen_count, taken_at, text, om, total), skipped


_NUMBER_TYPES = frozenset((float, int, Decimal, bool))


def _fast_samples(
    shape: Shape, rows: Sequence[tuple[Any, ...]], counter: bool
) -> tuple[str, float] | None:
    """Sample lines of the common result (string labels, finite numbers, unique label sets),
    built a column at a time, and their values' sum; None sends the rows through the general
    per-row path."""
    if not rows or shape.value_index is None:
        return None
    raw_values = list(map(itemgetter(shape.value_index), rows))
    if not set(map(type, raw_values)) <= _NUMBER_TYPES:
        return None  # NULLs and non-numbers: the general path skips or reports them
    try:
        values = list(map(float, raw_values))
    except (OverflowError, ValueError):
        return None  # beyond a float: the general path reports it
    total = sum(values)
    if total != total or total in (math.inf, -math.inf) or (counter and min(values) < 0):
        return None  # NaN, infinities and negative counters have their own rules
    if not shape.label_index:
        if len(rows) != 1:
            return None  # several rows without labels collide: the general path says so
        return f"{shape.metric}{shape.labels(())} {values[0]!r}\n", total
    opening = shape.metric + "{" + "".join(c + "," for c in shape.const)
    blocks: list[str] = []
    for position, (index, prefix) in enumerate(
        zip(shape.label_index, shape.label_prefixes, strict=True)
    ):
        column = list(map(itemgetter(index), rows))
        if set(map(type, column)) != {str}:
            return None  # NULLs, numbers and bytes have their own label rendering
        joined = "".join(column)
        if "\\" in joined or "\n" in joined or '"' in joined:
            column = list(map(escape_label_value, column))
        if position == 0:
            start = opening + prefix
            blocks = [start + value for value in column]
        else:
            separator = '",' + prefix
            blocks = [b + separator + value for b, value in zip(blocks, column, strict=True)]
    if len(set(blocks)) != len(rows):
        return None  # duplicate label sets: the general path names them
    lines = [f'{b}"}} {value!r}\n' for b, value in zip(blocks, values, strict=True)]
    return "".join(lines), total


def _samples(shape: Shape, rows: Rows, kpi: Kpi, lines: list[str]) -> tuple[int, float]:
    """The general path, one row at a time; returns the number of series rendered and the
    sum of their values."""
    assert shape.value_index is not None
    seen: set[str] = set()
    value_index = shape.value_index
    value_column = kpi.value_column or "value"
    metric = shape.metric
    total = 0.0
    for row in rows.rows:
        raw = row[value_index]
        if raw is None:
            continue  # counted as skipped by the caller
        value = number(raw, value_column)
        if kpi.type == "counter" and (value < 0 or math.isnan(value)):
            raise ResultError(f"counter value {value!r} is negative or NaN", value_column)
        labels = shape.labels(shape.label_values(row))
        if labels in seen:
            raise ResultError(
                f"two rows have the same labels {labels}; label columns must be unique"
            )
        seen.add(labels)
        total += value
        lines.append(f"{metric}{labels} {format_value(value)}\n")
    return len(seen), total


def render_preaggregated(
    kpi: Kpi, metric: str, const_labels: dict[str, str], rows: Rows, taken_at: float
) -> tuple[Snapshot, int]:
    """A histogram computed in SQL: rows of `le` and cumulative count per label set."""
    shape = Shape(kpi, metric, const_labels, rows)
    le_index = shape.column("le", "bucket bound")
    assert shape.value_index is not None
    sum_index = shape.column(kpi.sum, "sum") if kpi.sum else None
    value_column = kpi.value_column or "value"
    groups: dict[tuple[str, ...], dict[float, float]] = {}
    sums: dict[tuple[str, ...], float] = {}
    skipped = 0
    for row in rows.rows:
        if row[shape.value_index] is None or row[le_index] is None:
            skipped += 1
            continue
        key = shape.label_values(row)
        bound = _bound(row[le_index])
        buckets = groups.setdefault(key, {})
        if bound in buckets:
            raise ResultError(f"two rows have le={format_value(bound)} for the same labels", "le")
        buckets[bound] = number(row[shape.value_index], value_column)
        if sum_index is not None and row[sum_index] is not None:
            sums[key] = number(row[sum_index], kpi.sum or "sum")
    if len(groups) > kpi.max_series:
        raise ResultError(f"{len(groups)} series exceed max_series={kpi.max_series}")
    lines = [family_header(metric, "histogram", kpi.help, openmetrics=False)]
    for key, buckets in groups.items():
        if math.inf not in buckets:
            raise ResultError("each label set needs an le='+Inf' row (the total count)", "le")
        previous = -math.inf
        for bound in sorted(buckets):
            count = buckets[bound]
            if count < previous:
                raise ResultError("bucket counts must be cumulative (non-decreasing in le)", "le")
            previous = count
            bucket_labels = shape.labels(key, 'le="' + format_value(bound) + '"')
            lines.append(f"{metric}_bucket{bucket_labels} {format_value(count)}\n")
        labels = shape.labels(key)
        lines.append(f"{metric}_count{labels} {format_value(buckets[math.inf])}\n")
        if key in sums:
            lines.append(f"{metric}_sum{labels} {format_value(sums[key])}\n")
    total = sum(buckets[math.inf] for buckets in groups.values())
    snapshot = Snapshot.build(kpi.name, len(groups), taken_at, "".join(lines), None, total)
    return snapshot, skipped


def _bound(value: Any) -> float:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("+inf", "inf", "infinity"):
            return math.inf
        try:
            return float(text)
        except ValueError:
            raise ResultError(f"le {value!r} is not a number", "le") from None
    return number(value, "le")
