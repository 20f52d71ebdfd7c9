"""A ratio's recording rule, its threshold alerts and its SLO's indicator."""

from __future__ import annotations

from fractions import Fraction

from exporter.conventions import (
    burn_alert_name,
    events_record_name,
    ratio_alert_name,
    ratio_slo_names,
    words,
)
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
from exporter.generation.rules.slo import Sli
from exporter.generation.rules.thresholds import comparison
from exporter.spec.labels import ratio_labels
from exporter.spec.model import Ratio, Spec, Threshold


def _or_zero(part: str, total: str) -> str:
    """`part`, or 0 for a label set whose total has events but `part` has no series yet."""
    return f"({part} or {total} * 0)"


def ratio_expr(spec: Spec, ratio: Ratio, window: float) -> str:
    """Good over total; a label set without a good series (every event failing) reads 0."""
    good = promql.ratio_sum(spec, ratio, [ratio.good], window)
    total = promql.ratio_sum(spec, ratio, ratio.total, window)
    return f"{_or_zero(good, total)} / {total}"


def error_events(spec: Spec, ratio: Ratio, window: float) -> str:
    """Per-second rate of the ratio's bad events: the total's counters other than the good one
    (missing ones read 0), or the total minus the good counter when good is counted apart."""
    total = promql.ratio_sum(spec, ratio, ratio.total, window)
    others = [name for name in ratio.total if name != ratio.good]
    if ratio.good in ratio.total and others:
        return _or_zero(promql.ratio_sum(spec, ratio, others, window), total)
    good = promql.ratio_sum(spec, ratio, [ratio.good], window)
    return f"({total} - {_or_zero(good, total)})"


def ratio_sli(spec: Spec, ratio: Ratio) -> Sli:
    """A ratio's SLO: its bad events are the total's events other than the good ones."""
    slo = ratio.slo
    assert slo is not None

    def rates(window: float) -> tuple[str, str]:
        return error_events(spec, ratio, window), promql.ratio_sum(spec, ratio, ratio.total, window)

    return Sli(
        names=ratio_slo_names(ratio.name),
        alert=burn_alert_name(ratio.name),
        kpi=ratio.name,
        objective=Fraction(str(slo.objective)) / 100,
        period=slo.period,
        subject=capital(words(ratio.name.removesuffix("_ratio"))),
        what=capital(words(ratio.name.removesuffix("_ratio")))
        + " failed {share} of events over the last {window}",
        labels=ratio_labels(spec, ratio),
        rates=rates,
        min_events=ratio.min_events,
    )


def ratio_record(spec: Spec, ratio: Ratio) -> list[RecordRule]:
    """The ratio over its window and its events per second (the minimum-traffic guard)."""
    return [
        RecordRule(ratio.record_name, ratio_expr(spec, ratio, ratio.window)),
        RecordRule(
            events_record_name(ratio.name, ratio.window),
            promql.ratio_sum(spec, ratio, ratio.total, ratio.window),
        ),
    ]


def ratio_threshold_alert(spec: Spec, ratio: Ratio, threshold: Threshold) -> AlertRule:
    op, bound, side = comparison(threshold)
    value = ratio.record_name + promql.selector_matchers(threshold.matchers)
    agg = threshold.aggregate or ("min" if threshold.by is not None else None)
    by = None if threshold.by is None else promql.with_job(threshold.by)
    events = events_record_name(ratio.name, ratio.window) + promql.selector_matchers(
        threshold.matchers
    )
    if agg is not None:
        value = aggregate(agg, value, by=by, without=by is None)
        events = aggregate("sum", events, by=by, without=by is None)
    # a ratio over a handful of events moves by whole percents with each one: no page on it
    guard = f"{events} * {number(ratio.window)} >= {ratio.min_events}"
    labels = by if by is not None else ratio_labels(spec, ratio)
    subject = f"{words(ratio.name)} over {duration(ratio.window)}"
    name = ratio_alert_name(ratio.name, threshold.name, side == "above")
    return alert_rule(
        spec,
        name,
        f"{value} {op} {number(bound)}" + (f" and {guard}" if ratio.min_events else ""),
        threshold.for_,
        {"severity": threshold.severity, "kpi": ratio.name},
        threshold.summary or f"{capital(subject)} is {side} {number(bound)}.",
        threshold.description
        or (
            f"{capital(subject)} is {{{{ $value | humanizePercentage }}}}, {side} the "
            f"{threshold.severity} threshold of {number(bound)}{label_list(labels)}."
        ),
    )
