"""A ratio's recording rule and its threshold alerts."""

from __future__ import annotations

from exporter.generation import promql
from exporter.generation.promql import aggregate, duration
from exporter.generation.rules.model import (
    AlertRule,
    RecordRule,
    alert_rule,
    capital,
    label_list,
    number,
)
from exporter.generation.rules.thresholds import comparison
from exporter.spec.model import Ratio, Spec, Threshold


def ratio_labels(spec: Spec, ratio: Ratio) -> list[str]:
    """Labels of a ratio's recorded series."""
    level = promql.ratio_level(spec, ratio)
    if level is not None:
        return level
    kpis = promql.ratio_kpis(spec, ratio)
    return [n for n in promql.source_labels(spec, kpis[0]) if n != "instance"]


def ratio_expr(spec: Spec, ratio: Ratio, window: float) -> str:
    good = promql.ratio_sum(spec, ratio, [ratio.good], window)
    total = promql.ratio_sum(spec, ratio, ratio.total, window)
    return f"{good} / {total}"


def ratio_record(spec: Spec, ratio: Ratio) -> RecordRule:
    return RecordRule(ratio.record_name, ratio_expr(spec, ratio, ratio.window))


def ratio_threshold_alert(spec: Spec, ratio: Ratio, threshold: Threshold) -> AlertRule:
    op, bound, side = comparison(threshold)
    value = ratio.record_name + promql.selector_matchers(threshold.matchers)
    agg = threshold.aggregate or ("min" if threshold.by is not None else None)
    by = None if threshold.by is None else promql.with_job(threshold.by)
    if agg is not None:
        value = aggregate(agg, value, by=by, without=by is None)
    labels = by if by is not None else ratio_labels(spec, ratio)
    subject = f"{promql.words(ratio.name)} over {duration(ratio.window)}"
    name = threshold.name or promql.camel(ratio.name) + ("High" if side == "above" else "Low")
    return alert_rule(
        spec,
        name,
        f"{value} {op} {number(bound)}",
        threshold.for_,
        {"severity": threshold.severity, "kpi": ratio.name},
        threshold.summary or f"{capital(subject)} is {side} {number(bound)}.",
        threshold.description
        or (
            f"{capital(subject)} is {{{{ $value | humanizePercentage }}}}, {side} the "
            f"{threshold.severity} threshold of {number(bound)}{label_list(labels)}."
        ),
    )
