"""A KPI's alerts: its thresholds, and absent, not increasing, anomaly and forecast alerts."""

from __future__ import annotations

from exporter.conventions import camel, words
from exporter.generation.promql import aggregate, duration, series
from exporter.generation.rules.model import (
    AlertRule,
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


def anomaly_alert(spec: Spec, kpi: Kpi) -> AlertRule:
    assert kpi.anomaly is not None
    anomaly = kpi.anomaly
    metric = series(spec.metric_name(kpi), spec)
    window = duration(anomaly.window)
    expr = (
        f"abs({metric} - avg_over_time({metric}[{window}])) "
        f"> {number(anomaly.zscore)} * stddev_over_time({metric}[{window}])"
    )
    return alert_rule(
        spec,
        camel(kpi.name) + "Anomaly",
        expr,
        anomaly.for_,
        {"severity": anomaly.severity, "kpi": kpi.name},
        f"{capital(words(kpi.name))} is far from its usual value.",
        f"{capital(words(kpi.name))} deviates by {{{{ $value | humanize }}}} from its "
        f"{window} average, more than {number(anomaly.zscore)} standard deviations"
        f"{label_list(source_labels(spec, kpi))}.",
    )


def forecast_alert(spec: Spec, kpi: Kpi) -> AlertRule:
    assert kpi.forecast is not None
    forecast = kpi.forecast
    side = "above" if forecast.above is not None else "below"
    bound = forecast.above if forecast.above is not None else forecast.below
    assert bound is not None
    metric = series(spec.metric_name(kpi), spec)
    expr = (
        f"predict_linear({metric}[{duration(forecast.window)}], {number(forecast.in_)}) "
        f"{'>' if side == 'above' else '<'} {number(bound)}"
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
