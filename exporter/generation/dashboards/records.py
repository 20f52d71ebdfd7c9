"""Panels of free-form recording rules: title, unit and the labels their series keep, read
from the record's PromQL."""

from __future__ import annotations

import re

from exporter.generation.dashboards.kpis import display_title, help_or
from exporter.generation.dashboards.model import Panel, Target
from exporter.generation.dashboards.parsing import groupings_of, metric_names_of, without_literals
from exporter.generation.dashboards.queries import legend_of, selector
from exporter.generation.dashboards.thresholds import UNIT_ALIASES, per_period
from exporter.spec.labels import ratio_labels, source_labels
from exporter.spec.model import FreeRecord, Spec


def _read_labels(spec: Spec, metric: str, seen: frozenset[str]) -> tuple[str, ...] | None:
    """Labels of a series a record reads: a KPI's, a ratio's or another record's, or `up`."""
    if metric == "up":
        return ("job", "instance")
    for kpi in spec.kpis:
        name = spec.metric_name(kpi)
        labels = tuple(source_labels(spec, kpi))
        if kpi.type != "histogram" and metric == name:
            return labels
        if kpi.type == "histogram" and metric == f"{name}_bucket":
            return (*labels, "le")
        if kpi.type == "histogram" and metric in (f"{name}_sum", f"{name}_count"):
            return labels
    for ratio in spec.ratios:
        if metric == ratio.record_name:
            return tuple(ratio_labels(spec, ratio))
    for record in spec.records:
        if record.record == metric and metric not in seen:
            return record_labels(spec, record, seen | {metric})
    return None


def record_labels(
    spec: Spec, record: FreeRecord, seen: frozenset[str] = frozenset()
) -> tuple[str, ...] | None:
    """The labels a free-form record's series carry, read from its expression's outermost
    aggregation and the series it reads; None when a plain reading cannot tell (vector
    matching, label_replace, topk, series this spec does not describe)."""
    text = without_literals(record.expr)
    groupings = groupings_of(text)
    names = metric_names_of(text)
    if groupings is None or names is None:
        return None
    read = [_read_labels(spec, name, seen) for name in names]
    known = None
    if all(labels is not None for labels in read):
        known = tuple(dict.fromkeys(label for labels in read if labels for label in labels))
    if groupings:
        top = min(depth for depth, _, _ in groupings)
        outer = [(kind, labels) for depth, kind, labels in groupings if depth == top]
        if len({(kind, frozenset(labels)) for kind, labels in outer}) != 1:
            return None
        kind, kept = outer[0]
        narrowed = [set(labels) for _, k, labels in groupings if k == "by"]
        dropped = {label for _, k, labels in groupings if k == "without" for label in labels}
        if kind == "by":
            keep = [
                label
                for label in kept
                if all(label in by for by in narrowed)
                and label not in dropped
                and (known is None or label in known)
            ]
        elif narrowed or known is None:
            return None
        else:
            keep = [label for label in known if label not in dropped]
    elif known is None:
        return None
    else:
        keep = list(known)
    if re.search(r"(?<![\w:])histogram_quantile\s*\(", text):
        keep = [label for label in keep if label != "le"]
    return tuple(dict.fromkeys([*keep, *sorted(record.labels)]))


def _record_parts(name: str) -> tuple[str, str, str]:
    """Level, metric and operations of a `level:metric:operations` record name."""
    parts = name.split(":")
    if len(parts) < 3:
        return parts[0], parts[-1], ""
    return parts[0], "_".join(parts[1:-1]), parts[-1]


def record_unit(name: str) -> str:
    """Grafana's unit guessed from a record name: percent, ratio, then the metric's unit word."""
    _, metric, operations = _record_parts(name)
    if "percent" in operations or metric.endswith("_percent"):
        return "percent"
    if "ratio" in operations or metric.endswith("_ratio"):
        return "percentunit"
    return UNIT_ALIASES.get(metric.rsplit("_", 1)[-1].lower(), "short")


# a rate scaled by one of these constants is per minute, hour or day
_SCALES = {60.0: "min", 3600.0: "h", 86400.0: "d"}


def rate_period(expr: str) -> str | None:
    """The period a record's rate is per (s, min, h or d), when its expression is a rate of
    counters: rate() or irate(), aggregated or scaled by constants, with no division and no
    quantile; `* 3600` makes it per hour. None for anything else."""
    text = without_literals(expr)
    if "/" in text or re.search(r"(?<![\w:])histogram_quantile\s*\(", text):
        return None
    if not re.search(r"(?<![\w:])i?rate\s*\(", text):
        return None
    scales = [float(n) for n in re.findall(r"\*\s*(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", text)]
    periods = [_SCALES[n] for n in scales if n in _SCALES]
    if len(periods) > 1:
        return None
    return periods[0] if periods else "s"


def record_panel_unit(record: FreeRecord) -> str:
    """The unit of a record's panel: its name's, per the period when it is a rate."""
    unit = record_unit(record.record)
    period = rate_period(record.expr)
    return unit if period is None else per_period(unit, period)


def record_title(name: str) -> str:
    """`job_queue_name:queue_job_duration_seconds:p95_rate5m` -> `Queue job duration
    (p95_rate5m) by queue_name`; the level's `job` goes unsaid."""
    level, metric, operations = _record_parts(name)
    title = display_title(metric) + (f" ({operations})" if operations else "")
    level = level.removeprefix("job_") if level.startswith("job_") else level
    return title + (f" by {level}" if level != "job" else "")


def record_panels(spec: Spec, record: FreeRecord) -> tuple[Panel, ...]:
    """A free-form record: its recorded series over time, by the labels the rule keeps."""
    labels = record_labels(spec, record)
    keeps_job = labels is None or "job" in labels
    if labels is None:
        legend = "{{job}}"
    else:
        constant = set(spec.exporter.labels) | set(record.labels)
        shown = [label for label in labels if label != "job" and label not in constant]
        legend = legend_of(
            shown, "{{job}}" if keeps_job else display_title(_record_parts(record.record)[1])
        )
    description = help_or(record.help, f"The derived KPI {record.record}.")
    description += f" The recording rule {record.record}."
    if not keeps_job:
        description += " Its expression aggregates the job label away: the job filter cannot apply."
    expr = selector(
        record.record, instance=labels is not None and "instance" in labels, job=keeps_job
    )
    return (
        Panel(
            key=f"record/{record.record}",
            kind="timeseries",
            title=record_title(record.record),
            description=description,
            targets=(Target(expr, legend),),
            unit=record_panel_unit(record),
            width=12,
        ),
    )
