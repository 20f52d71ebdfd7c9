"""A KPI's alerts: its thresholds, and absent, not increasing, anomaly and forecast alerts."""

from __future__ import annotations

from exporter.conventions import baseline_record_name, camel, words
from exporter.generation import promql
from exporter.generation.promql import aggregate, duration, series
from exporter.generation.rules.model import (
    AlertRule,
    RecordRule,
    alert_rule,
    capital,
    confirm_for,
    label_list,
    number,
)
from exporter.generation.rules.thresholds import threshold_alert, value_format
from exporter.spec.labels import source_labels
from exporter.spec.model import Kpi, Spec


def absent_alert(spec: Spec, kpi: Kpi, wait: float) -> AlertRule:
    metric = spec.metric_name(kpi)
    return alert_rule(
        spec,
        camel(kpi.name) + "Absent",
        f"absent({series(metric, spec)})",
        wait,
        {"severity": "warning", "kpi": kpi.name},
        f"KPI {kpi.name} has no series.",
        f"No series of {metric} has been scraped from job {{{{ $labels.job }}}} "
        f"for {duration(wait)}.",
    )


def no_increase_level(spec: Spec) -> list[str]:
    """A counter's total is judged per job and exporter labels, not per label value."""
    return ["job", *sorted(spec.exporter.labels)]


def no_increase_alert(spec: Spec, kpi: Kpi, window: float) -> AlertRule:
    metric = series(spec.metric_name(kpi), spec)
    level = no_increase_level(spec)
    grown = aggregate("sum", f"increase({metric}[{duration(window)}])", by=level)
    existed = aggregate("sum", f"{metric} offset {duration(window)}", by=level)
    return alert_rule(
        spec,
        camel(kpi.name) + "NotIncreasing",
        f"{grown} == 0 and {existed}",
        confirm_for(spec),
        {"severity": "warning", "kpi": kpi.name},
        f"Counter {kpi.name} has stopped increasing.",
        f"{kpi.name} has not increased for {duration(window)}{label_list(level)}.",
    )


BASELINE_SPAN = 3600.0  # the baseline is the mean (and spread) of one hour
BASELINE_INTERVAL = 300.0  # recorded every 5 minutes: cheap to keep and to look back on


def baseline_records(spec: Spec, kpi: Kpi) -> list[RecordRule]:
    """The hourly mean and standard deviation of a gauge, recorded every BASELINE_INTERVAL."""
    metric = series(spec.metric_name(kpi), spec)
    span = duration(BASELINE_SPAN)
    return [
        RecordRule(
            baseline_record(spec, kpi, "avg"),
            promql.dedup(spec, f"avg_over_time({metric}[{span}])"),
        ),
        RecordRule(
            baseline_record(spec, kpi, "stddev"),
            promql.dedup(spec, f"stddev_over_time({metric}[{span}])"),
        ),
    ]


def baseline_record(spec: Spec, kpi: Kpi, op: str) -> str:
    return baseline_record_name(spec.metric_name(kpi), op, BASELINE_SPAN)


def anomaly_alert(spec: Spec, kpi: Kpi) -> AlertRule:
    """The value against the same hour one season (`window`) ago: further than `zscore` of
    that hour's standard deviations, and by at least `min_change` of its mean. A flat series
    has no deviation, so the relative change decides; an outage at a daily peak is a 100%
    drop from the same hour yesterday, however wide the day's swing."""
    assert kpi.anomaly is not None
    anomaly = kpi.anomaly
    metric = promql.dedup(spec, series(spec.metric_name(kpi), spec))
    ago = f"offset {duration(anomaly.window - BASELINE_SPAN / 2)}"  # that hour, centred
    mean = f"{baseline_record(spec, kpi, 'avg')} {ago}"
    spread = f"{baseline_record(spec, kpi, 'stddev')} {ago}"
    change = f"abs({metric} - {mean})"
    expr = (
        f"{change} > {number(anomaly.zscore)} * {spread}\n"
        f"and\n{change} > {number(anomaly.min_change)} * abs({mean})"
    )
    labels = source_labels(spec, kpi)
    if spec.exporter.replicas is not None:
        labels = [name for name in labels if name != "instance"]
    return alert_rule(
        spec,
        camel(kpi.name) + "Anomaly",
        expr,
        anomaly.for_,
        {"severity": anomaly.severity, "kpi": kpi.name},
        f"{capital(words(kpi.name))} is far from its usual value.",
        f"{capital(words(kpi.name))} differs by {{{{ $value | humanize }}}} from the same "
        f"hour {duration(anomaly.window)} ago, more than {number(anomaly.zscore)} standard "
        f"deviations and {number(anomaly.min_change * 100)}%{label_list(labels)}.",
    )


def forecast_near(kpi: Kpi) -> float:
    """The value past which a forecast may fire: `near`, else 80% of the way to the limit."""
    forecast = kpi.forecast
    assert forecast is not None
    if forecast.near is not None:
        return forecast.near
    bound = forecast.above if forecast.above is not None else forecast.below
    assert bound is not None
    return bound - 0.2 * abs(bound) if forecast.above is not None else bound + 0.2 * abs(bound)


def forecast_alert(spec: Spec, kpi: Kpi) -> AlertRule:
    """The trend crosses the limit within `in`, and the value is already near it (a steep
    start far below the limit is not yet worth a page)."""
    assert kpi.forecast is not None
    forecast = kpi.forecast
    side = "above" if forecast.above is not None else "below"
    bound = forecast.above if forecast.above is not None else forecast.below
    assert bound is not None
    metric = series(spec.metric_name(kpi), spec)
    op = ">" if side == "above" else "<"
    predicted = f"predict_linear({metric}[{duration(forecast.window)}], {number(forecast.in_)})"
    expr = (
        f"{promql.dedup(spec, predicted)} {op} {number(bound)}\n"
        f"and\n{promql.dedup(spec, metric)} {op} {number(forecast_near(kpi))}"
    )
    value, unit = value_format(kpi.unit)
    subject = capital(words(kpi.name))
    return alert_rule(
        spec,
        camel(kpi.name) + ("PredictedHigh" if side == "above" else "PredictedLow"),
        expr,
        forecast.for_,
        {"severity": forecast.severity, "kpi": kpi.name},
        f"{subject} is predicted to go {side} {number(bound)}{unit} within "
        f"{duration(forecast.in_)}.",
        f"At its {duration(forecast.window)} trend, {words(kpi.name)} will be {value} in "
        f"{duration(forecast.in_)}{label_list(source_labels(spec, kpi))}.",
    )


def kpi_alerts(spec: Spec, kpi: Kpi) -> list[AlertRule]:
    rules = [threshold_alert(spec, kpi, t) for t in kpi.alerts]
    if kpi.absent_for is not None:
        rules.append(absent_alert(spec, kpi, kpi.absent_for))
    if kpi.no_increase_for is not None:
        rules.append(no_increase_alert(spec, kpi, kpi.no_increase_for))
    if kpi.anomaly is not None:
        rules.append(anomaly_alert(spec, kpi))
    if kpi.forecast is not None:
        rules.append(forecast_alert(spec, kpi))
    return rules
