"""Prometheus alerting and recording rules generated from the KPI spec (monitoring-mixin style)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from exporter.generation import promql
from exporter.generation.promql import aggregate, duration, quote, series
from exporter.spec.model import Kpi, Ratio, Severity, Slo, Spec, Threshold

MAX_GROUP_RULES = 20
HEALTH_GROUP = "kpi-exporter-health"
CUSTOM_GROUP = "kpi-exporter-custom-alerts"
CUSTOM_RECORDS_GROUP = "kpi-exporter-custom.rules"


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule; labels and annotations are sorted (name, value) pairs."""

    alert: str
    expr: str
    for_: float
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)

    def annotation(self, name: str) -> str | None:
        return dict(self.annotations).get(name)


@dataclass(frozen=True)
class RecordRule:
    """One recording rule: `level:metric:operations` = expr."""

    record: str
    expr: str


Rule = AlertRule | RecordRule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class RuleSet:
    """Everything generated: alert groups and recording-rule groups, in output order."""

    alerts: tuple[RuleGroup, ...]
    records: tuple[RuleGroup, ...]


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window multi-burn-rate alert of the SRE workbook (for a 30-day period)."""

    long: float
    short: float
    budget_spent: Fraction  # share of the period's budget that this burn spends in `long`
    severity: Severity
    for_: float

    def factor(self, period: float) -> Fraction:
        """The burn rate: `budget_spent` of the budget spent in `long` (14.4 for 1h of 30d)."""
        return self.budget_spent * Fraction(round(period)) / Fraction(round(self.long))


BURN_WINDOWS = (
    BurnWindow(3600, 300, Fraction(2, 100), "critical", 120),
    BurnWindow(21600, 1800, Fraction(5, 100), "critical", 900),
    BurnWindow(86400, 7200, Fraction(10, 100), "warning", 3600),
    BurnWindow(259200, 21600, Fraction(10, 100), "warning", 10800),
)


def number(value: float | Fraction) -> str:
    """A number as PromQL and people read it: 10 rather than 10.0."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return format(float(value), ".6g")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _pairs(mapping: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def _alert(
    spec: Spec,
    name: str,
    expr: str,
    for_: float,
    labels: Mapping[str, str],
    summary: str,
    description: str,
) -> AlertRule:
    annotations = {"summary": summary, "description": description}
    pattern = spec.exporter.runbook_url
    if pattern:
        kpi = labels.get("kpi", "")
        annotations["runbook_url"] = pattern.replace("{alertname}", name).replace("{kpi}", kpi)
    return AlertRule(name, expr, for_, _pairs(labels), _pairs(annotations))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _label_list(labels: Iterable[str]) -> str:
    shown = [f"{name}={{{{ $labels.{name} }}}}" for name in labels if name != "job"]
    return f" ({', '.join(shown)})" if shown else ""


def confirm_for(spec: Spec) -> float:
    """How long a plain failure condition must hold: a minute and two scrapes."""
    return max(60.0, 2 * spec.exporter.scrape_interval)


def poll_confirm_for(spec: Spec, kpi: Kpi) -> float:
    """Two poll intervals of a KPI, and at least two scrapes."""
    return max(2 * kpi.period, 2 * spec.exporter.scrape_interval)


# --- exporter health ------------------------------------------------------------------------


def _by_confirm(spec: Spec) -> list[tuple[float, list[Kpi]]]:
    groups: dict[float, list[Kpi]] = {}
    for kpi in spec.kpis:
        groups.setdefault(poll_confirm_for(spec, kpi), []).append(kpi)
    return sorted(groups.items())


def _kpi_series(name: str, spec: Spec, kpis: Sequence[Kpi], split: bool) -> str:
    text = series(name, spec)
    if not split:
        return text
    alternatives = "|".join(sorted(k.name for k in kpis))
    return text[:-1] + f", kpi=~{quote(alternatives)}" + "}"


def health_rules(spec: Spec) -> list[AlertRule]:
    """Absent target, target down, KPI failing or stale, database down, reload failed."""
    sel = promql.selector(spec)
    confirm = confirm_for(spec)
    job_eq = [m for m in promql.parse_matchers(spec.exporter.rule_selector()) if m.name == "job"]
    absent_labels = " of job {{ $labels.job }}" if job_eq and job_eq[0].op == "=" else ""
    rules = [
        _alert(
            spec,
            "KpiExporterAbsent",
            f"absent(up{sel})",
            max(300.0, 2 * spec.exporter.scrape_interval),
            {"severity": "critical"},
            "The kpi-exporter target has disappeared from Prometheus.",
            f"Prometheus has no kpi-exporter target{absent_labels} matching {sel} to scrape.",
        ),
        _alert(
            spec,
            "KpiExporterDown",
            f"up{sel} == 0",
            confirm,
            {"severity": "critical"},
            "A kpi-exporter target is down.",
            "Prometheus cannot scrape kpi-exporter {{ $labels.instance }} "
            "of job {{ $labels.job }}.",
        ),
    ]
    periods = _by_confirm(spec)
    split = len(periods) > 1
    for wait, kpis in periods:
        limit = 3 * max(k.period for k in kpis)
        rules.append(
            _alert(
                spec,
                "KpiExporterKpiFailing",
                _kpi_series("kpi_exporter_kpi_up", spec, kpis, split) + " == 0",
                wait,
                {"severity": "warning", "poll_interval": duration(min(k.period for k in kpis))},
                "A KPI query keeps failing.",
                "KPI {{ $labels.kpi }} on {{ $labels.instance }} has failed its polls for "
                f"{duration(wait)}; kpi_exporter_query_errors_total says why.",
            )
        )
        rules.append(
            _alert(
                spec,
                "KpiExporterKpiStale",
                "time() - "
                + _kpi_series("kpi_exporter_last_success_timestamp_seconds", spec, kpis, split)
                + f" > {number(limit)}",
                confirm,
                {"severity": "warning", "poll_interval": duration(max(k.period for k in kpis))},
                "A KPI's data is stale.",
                "KPI {{ $labels.kpi }} on {{ $labels.instance }} last succeeded "
                "{{ $value | humanizeDuration }} ago, more than three poll intervals "
                f"({duration(limit)}).",
            )
        )
    rules.append(
        _alert(
            spec,
            "KpiExporterDatabaseDown",
            f"kpi_exporter_database_up{sel} == 0",
            confirm,
            {"severity": "critical"},
            "A database polled by kpi-exporter is unreachable.",
            "Database {{ $labels.database }} is down for kpi-exporter {{ $labels.instance }}.",
        )
    )
    rules.append(
        _alert(
            spec,
            "KpiExporterReloadFailed",
            f"kpi_exporter_config_last_reload_successful{sel} == 0",
            confirm,
            {"severity": "warning"},
            "The last kpi-exporter configuration reload failed.",
            "kpi-exporter {{ $labels.instance }} could not reload its spec; "
            "it keeps running the previous one.",
        )
    )
    return rules


# --- KPI alerts -------------------------------------------------------------------------------


def threshold_labels(spec: Spec, kpi: Kpi, threshold: Threshold) -> list[str]:
    """The labels a threshold alert's series keep after its aggregation."""
    source = promql.source_labels(spec, kpi)
    if threshold.by is not None:
        return list(threshold.by)
    if threshold.aggregate is not None:
        return [name for name in source if name != "instance"]
    return source


def threshold_value(spec: Spec, kpi: Kpi, threshold: Threshold) -> str:
    """The PromQL a KPI threshold compares: raw, rate or increase, then aggregated."""
    selected = series(spec.metric_name(kpi), spec, threshold.matchers)
    if threshold.rate is not None:
        expr = f"rate({selected}[{duration(threshold.rate)}])"
    elif threshold.increase is not None:
        expr = f"increase({selected}[{duration(threshold.increase)}])"
    else:
        expr = selected
    op = threshold.aggregate
    if op is None and threshold.by is not None:
        op = "sum" if kpi.type == "counter" else "max"
    if op is not None:
        expr = aggregate(op, expr, by=threshold.by, without=threshold.by is None)
    return expr


def _comparison(threshold: Threshold) -> tuple[str, float, str]:
    if threshold.above is not None:
        return ">", threshold.above, "above"
    assert threshold.below is not None
    return "<", threshold.below, "below"


def _value_format(unit: str) -> tuple[str, str]:
    """(template of $value, unit words) for a KPI unit."""
    if unit == "seconds":
        return "{{ $value | humanizeDuration }}", " seconds"
    if unit == "ratio":
        return "{{ $value | humanizePercentage }}", ""
    if unit:
        return f"{{{{ $value | humanize }}}} {unit}", f" {unit}"
    return "{{ $value | humanize }}", ""


def threshold_alert_name(kpi_name: str, threshold: Threshold) -> str:
    """The given name, else `<Kpi>[Rate|Increase]High|Low`."""
    if threshold.name:
        return threshold.name
    kind = "Rate" if threshold.rate else "Increase" if threshold.increase else ""
    return promql.camel(kpi_name) + kind + ("High" if threshold.above is not None else "Low")


def threshold_alert(spec: Spec, kpi: Kpi, threshold: Threshold) -> AlertRule:
    op, bound, side = _comparison(threshold)
    subject = promql.words(kpi.name)
    value, unit = _value_format(kpi.unit)
    if threshold.rate is not None:
        subject = f"the per-second rate of {subject}"
        value, unit = "{{ $value | humanize }}/s", " per second"
    elif threshold.increase is not None:
        subject = f"the increase of {subject} over {duration(threshold.increase)}"
    if threshold.matchers:
        subject += " with " + ", ".join(f"{k}={v}" for k, v in sorted(threshold.matchers.items()))
    name = threshold_alert_name(kpi.name, threshold)
    summary = threshold.summary or f"{_capital(subject)} is {side} {number(bound)}{unit}."
    description = threshold.description or (
        f"{_capital(subject)} is {value}, {side} the {threshold.severity} threshold of "
        f"{number(bound)}{unit}{_label_list(threshold_labels(spec, kpi, threshold))}."
    )
    return _alert(
        spec,
        name,
        f"{threshold_value(spec, kpi, threshold)} {op} {number(bound)}",
        threshold.for_,
        {"severity": threshold.severity, "kpi": kpi.name},
        summary,
        description,
    )


def absent_alert(spec: Spec, kpi: Kpi, wait: float) -> AlertRule:
    metric = spec.metric_name(kpi)
    return _alert(
        spec,
        promql.camel(kpi.name) + "Absent",
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
    return _alert(
        spec,
        promql.camel(kpi.name) + "NotIncreasing",
        f"{grown} == 0 and {existed}",
        confirm_for(spec),
        {"severity": "warning", "kpi": kpi.name},
        f"Counter {kpi.name} has stopped increasing.",
        f"{kpi.name} has not increased for {duration(window)}{_label_list(level)}.",
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
    return _alert(
        spec,
        promql.camel(kpi.name) + "Anomaly",
        expr,
        anomaly.for_,
        {"severity": anomaly.severity, "kpi": kpi.name},
        f"{_capital(promql.words(kpi.name))} is far from its usual value.",
        f"{_capital(promql.words(kpi.name))} deviates by {{{{ $value | humanize }}}} from its "
        f"{window} average, more than {number(anomaly.zscore)} standard deviations"
        f"{_label_list(promql.source_labels(spec, kpi))}.",
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
    value, unit = _value_format(kpi.unit)
    subject = _capital(promql.words(kpi.name))
    return _alert(
        spec,
        promql.camel(kpi.name) + ("PredictedHigh" if side == "above" else "PredictedLow"),
        expr,
        forecast.for_,
        {"severity": forecast.severity, "kpi": kpi.name},
        f"{subject} is predicted to go {side} {number(bound)}{unit} within "
        f"{duration(forecast.in_)}.",
        f"At its {duration(forecast.window)} trend, {promql.words(kpi.name)} will be {value} in "
        f"{duration(forecast.in_)}{_label_list(promql.source_labels(spec, kpi))}.",
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


# --- ratios and SLOs --------------------------------------------------------------------------


def ratio_labels(spec: Spec, ratio: Ratio) -> list[str]:
    """Labels of a ratio's recorded series."""
    level = promql.ratio_level(spec, ratio)
    if level is not None:
        return level
    kpis = promql.ratio_kpis(spec, ratio)
    return [n for n in promql.source_labels(spec, kpis[0]) if n != "instance"]


def _ratio_expr(spec: Spec, ratio: Ratio, window: float) -> str:
    good = promql.ratio_sum(spec, ratio, [ratio.good], window)
    total = promql.ratio_sum(spec, ratio, ratio.total, window)
    return f"{good} / {total}"


def error_ratio_record(ratio: Ratio, window: float) -> str:
    return f"{promql.ratio_record_prefix(ratio)}:error_ratio_rate{duration(window)}"


def budget_record(ratio: Ratio) -> str:
    return f"{promql.ratio_record_prefix(ratio)}:error_budget_remaining"


def error_budget(slo: Slo) -> str:
    """The error budget as a fraction, written exactly: 99.9 -> '0.001'."""
    budget = (100 - Fraction(str(slo.objective))) / 100
    return format(float(budget), ".12g")


def slo_windows(ratio: Ratio) -> list[float]:
    assert ratio.slo is not None
    windows = {w.long for w in BURN_WINDOWS} | {w.short for w in BURN_WINDOWS}
    return sorted(windows | {ratio.slo.period})


def ratio_records(spec: Spec, ratio: Ratio) -> list[RecordRule]:
    rules = [RecordRule(ratio.record_name, _ratio_expr(spec, ratio, ratio.window))]
    if ratio.slo is not None:
        for window in slo_windows(ratio):
            rules.append(
                RecordRule(
                    error_ratio_record(ratio, window),
                    f"1 - ({_ratio_expr(spec, ratio, window)})",
                )
            )
        rules.append(
            RecordRule(
                budget_record(ratio),
                f"1 - ({error_ratio_record(ratio, ratio.slo.period)} / {error_budget(ratio.slo)})",
            )
        )
    return rules


def ratio_threshold_alert(spec: Spec, ratio: Ratio, threshold: Threshold) -> AlertRule:
    op, bound, side = _comparison(threshold)
    value = ratio.record_name + promql.selector_matchers(threshold.matchers)
    agg = threshold.aggregate or ("min" if threshold.by is not None else None)
    if agg is not None:
        value = aggregate(agg, value, by=threshold.by, without=threshold.by is None)
    labels = threshold.by if threshold.by is not None else ratio_labels(spec, ratio)
    subject = f"{promql.words(ratio.name)} over {duration(ratio.window)}"
    name = threshold.name or promql.camel(ratio.name) + ("High" if side == "above" else "Low")
    return _alert(
        spec,
        name,
        f"{value} {op} {number(bound)}",
        threshold.for_,
        {"severity": threshold.severity, "kpi": ratio.name},
        threshold.summary or f"{_capital(subject)} is {side} {number(bound)}.",
        threshold.description
        or (
            f"{_capital(subject)} is {{{{ $value | humanizePercentage }}}}, {side} the "
            f"{threshold.severity} threshold of {number(bound)}{_label_list(labels)}."
        ),
    )


def burn_alert_name(ratio: Ratio) -> str:
    return promql.camel(ratio.name.removesuffix("_ratio")) + "ErrorBudgetBurn"


def burn_alerts(spec: Spec, ratio: Ratio) -> list[AlertRule]:
    """The SRE workbook's page and ticket burn-rate alerts for a ratio's SLO."""
    slo = ratio.slo
    assert slo is not None
    budget = error_budget(slo)
    subject = _capital(promql.words(ratio.name.removesuffix("_ratio")))
    rules = []
    for window in BURN_WINDOWS:
        factor = number(window.factor(slo.period))
        limit = f"({factor} * {budget})"
        expr = (
            f"{error_ratio_record(ratio, window.long)} > {limit}\n"
            f"and\n{error_ratio_record(ratio, window.short)} > {limit}"
        )
        rules.append(
            _alert(
                spec,
                burn_alert_name(ratio),
                expr,
                window.for_,
                {
                    "severity": window.severity,
                    "kpi": ratio.name,
                    "long": duration(window.long),
                    "short": duration(window.short),
                },
                f"{subject} is burning its error budget too fast.",
                f"{subject} failed {{{{ $value | humanizePercentage }}}} of events over the last "
                f"{duration(window.long)}: {factor}x the error budget of its "
                f"{number(slo.objective)}% objective over {duration(slo.period)}"
                f"{_label_list(ratio_labels(spec, ratio))}.",
            )
        )
    return rules


def ratio_alerts(spec: Spec, ratio: Ratio) -> list[AlertRule]:
    rules = [ratio_threshold_alert(spec, ratio, t) for t in ratio.alerts]
    if ratio.slo is not None:
        rules.extend(burn_alerts(spec, ratio))
    return rules


# --- free-form alerts and assembly ------------------------------------------------------------


def free_alerts(spec: Spec) -> list[AlertRule]:
    return [
        _alert(
            spec,
            alert.name,
            alert.expr.strip(),
            alert.for_,
            {**alert.labels, "severity": alert.severity, "kpi": alert.kpi or ""},
            alert.summary,
            alert.description,
        )
        for alert in spec.alerts
    ]


def free_records(spec: Spec) -> list[RecordRule]:
    return [RecordRule(r.record, r.expr.strip()) for r in spec.records]


def _groups(name: str, rules: Sequence[Rule]) -> list[RuleGroup]:
    """One group, or numbered groups of at most MAX_GROUP_RULES rules."""
    if not rules:
        return []
    if len(rules) <= MAX_GROUP_RULES:
        return [RuleGroup(name, tuple(rules))]
    chunks = range(0, len(rules), MAX_GROUP_RULES)
    return [
        RuleGroup(f"{name}-{n}", tuple(rules[start : start + MAX_GROUP_RULES]))
        for n, start in enumerate(chunks, 1)
    ]


def kpi_group_name(kpi: Kpi) -> str:
    return f"kpi-{kpi.name}-alerts"


def ratio_group_name(ratio: Ratio, records: bool) -> str:
    return f"ratio-{ratio.name}.rules" if records else f"ratio-{ratio.name}-alerts"


def build_rules(spec: Spec) -> RuleSet:
    """All rules for a valid spec, in a stable order (health, KPIs, ratios by name, custom)."""
    alerts = _groups(HEALTH_GROUP, health_rules(spec))
    for kpi in sorted(spec.kpis, key=lambda k: k.name):
        alerts += _groups(kpi_group_name(kpi), kpi_alerts(spec, kpi))
    records: list[RuleGroup] = []
    for ratio in sorted(spec.ratios, key=lambda r: r.name):
        records += _groups(ratio_group_name(ratio, True), ratio_records(spec, ratio))
        alerts += _groups(ratio_group_name(ratio, False), ratio_alerts(spec, ratio))
    alerts += _groups(CUSTOM_GROUP, free_alerts(spec))
    records += _groups(CUSTOM_RECORDS_GROUP, free_records(spec))
    return RuleSet(tuple(alerts), tuple(records))
