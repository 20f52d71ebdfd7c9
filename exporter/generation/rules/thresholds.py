"""Threshold alerts on a KPI's value, rate or increase, and their names and wording."""

from __future__ import annotations

from exporter.conventions import threshold_alert_name, words
from exporter.generation import promql
from exporter.generation.promql import aggregate, duration, series
from exporter.generation.rules.model import AlertRule, alert_rule, capital, label_list, number
from exporter.spec.labels import database_labels, source_labels
from exporter.spec.model import Kpi, Spec, Threshold


def threshold_labels(spec: Spec, kpi: Kpi, threshold: Threshold) -> list[str]:
    """The labels a threshold alert's series keep after its aggregation."""
    source = source_labels(spec, kpi)
    if threshold.by is not None:
        return promql.with_job(threshold.by)
    spanned = database_labels(spec, kpi)
    if threshold.aggregate is not None or spec.exporter.replicas is not None or spanned:
        return [name for name in source if name != "instance" and name not in spanned]
    return source


def threshold_value(spec: Spec, kpi: Kpi, threshold: Threshold) -> str:
    """The PromQL a KPI threshold compares: raw, rate or whole increase, one value per HA pair,
    then aggregated keeping `job`. A KPI on several databases is judged by its business value:
    summed over its databases (or by `aggregate`) unless `by` keeps the database label.

    An increase is floored: `increase()` extrapolates to the window's edges (3 events read as
    3.16 when the samples span 285 s of 5m), and a count alert compares whole events."""
    selected = series(spec.metric_name(kpi), spec, threshold.matchers)
    if threshold.rate is not None:
        expr = f"rate({selected}[{duration(threshold.rate)}])"
    elif threshold.increase is not None:
        expr = f"floor(increase({selected}[{duration(threshold.increase)}]))"
    else:
        expr = selected
    expr = promql.dedup(spec, expr)
    op = threshold.aggregate
    if op is None and threshold.by is not None:
        op = "sum" if kpi.type == "counter" else "max"
    spanned = database_labels(spec, kpi)
    if op is None and spanned:
        op = "sum"
    if op is not None:
        by = None if threshold.by is None else promql.with_job(threshold.by)
        expr = aggregate(op, expr, by=by, without=by is None, also_without=spanned)
    return expr


def comparison(threshold: Threshold) -> tuple[str, float, str]:
    if threshold.above is not None:
        return ">", threshold.above, "above"
    assert threshold.below is not None
    return "<", threshold.below, "below"


def value_format(unit: str) -> tuple[str, str]:
    """(template of $value, unit words) for a KPI unit."""
    if unit == "seconds":
        return "{{ $value | humanizeDuration }}", " seconds"
    if unit == "ratio":
        return "{{ $value | humanizePercentage }}", ""
    if unit:
        return f"{{{{ $value | humanize }}}} {unit}", f" {unit}"
    return "{{ $value | humanize }}", ""


def threshold_alert(spec: Spec, kpi: Kpi, threshold: Threshold) -> AlertRule:
    op, bound, side = comparison(threshold)
    subject = words(kpi.name)
    value, unit = value_format(kpi.unit)
    if threshold.rate is not None:
        subject = f"the per-second rate of {subject}"
        value, unit = "{{ $value | humanize }}/s", " per second"
    elif threshold.increase is not None:
        subject = f"the increase of {subject} over {duration(threshold.increase)}"
    if threshold.matchers:
        subject += " with " + ", ".join(f"{k}={v}" for k, v in sorted(threshold.matchers.items()))
    name = threshold_alert_name(
        kpi.name, threshold.name, threshold.compared, threshold.above is not None
    )
    summary = threshold.summary or f"{capital(subject)} is {side} {number(bound)}{unit}."
    description = threshold.description or (
        f"{capital(subject)} is {value}, {side} the {threshold.severity} threshold of "
        f"{number(bound)}{unit}{label_list(threshold_labels(spec, kpi, threshold))}."
    )
    return alert_rule(
        spec,
        name,
        f"{threshold_value(spec, kpi, threshold)} {op} {number(bound)}",
        threshold.for_,
        {"severity": threshold.severity, "kpi": kpi.name},
        summary,
        description,
    )
