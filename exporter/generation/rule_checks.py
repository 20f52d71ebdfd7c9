"""Spec checks for what the generated rules need: windows, counters, names, annotations."""

from __future__ import annotations

from exporter.generation import promql
from exporter.generation.alert_templates import check as template_problem
from exporter.generation.rules.ratios import ratio_labels
from exporter.generation.rules.slo import BURN_WINDOWS, burn_alert_name
from exporter.generation.rules.thresholds import threshold_alert_name
from exporter.spec.model import Kpi, Loc, Ratio, Spec, Threshold

MAX_ALERT_NAME = 40
Problems = list[tuple[Loc, str]]


def _summary(loc: Loc, summary: str | None, problems: Problems) -> None:
    if summary is not None and ("{{" in summary or not summary.rstrip().endswith(".")):
        problems.append(
            (
                loc,
                "summary must be a static sentence ending in a period (templates: description)",
            )
        )


def _description(loc: Loc, description: str | None, problems: Problems) -> None:
    if description is not None:
        why = template_problem(description)
        if why:
            problems.append((loc, f"{why}; generated tests render $value, $labels.NAME and printf"))


def _name(loc: Loc, name: str, problems: Problems) -> None:
    if len(name) > MAX_ALERT_NAME:
        problems.append(
            (loc, f"the alert name {name} is longer than {MAX_ALERT_NAME} characters; set 'name'")
        )


def _window(
    loc: Loc, what: str, window: float, kpis: list[Kpi], spec: Spec, problems: Problems
) -> None:
    scrape = spec.exporter.scrape_interval
    if window < 2 * scrape:
        problems.append(
            (
                loc,
                f"{what} {promql.duration(window)} is under 2 scrape intervals "
                f"(exporter.scrape_interval {promql.duration(scrape)})",
            )
        )
    for kpi in kpis:
        if window < 2 * kpi.period:
            problems.append(
                (
                    loc,
                    f"{what} {promql.duration(window)} is under 2 poll intervals of {kpi.name} "
                    f"(every {promql.duration(kpi.period)})",
                )
            )


def _threshold(
    loc: Loc, spec: Spec, threshold: Threshold, known: set[str], problems: Problems
) -> None:
    _summary((*loc, "summary"), threshold.summary, problems)
    _description((*loc, "description"), threshold.description, problems)
    for key, names in (("by", threshold.by or []), ("matchers", list(threshold.matchers))):
        unknown = sorted(set(names) - known)
        if unknown:
            problems.append(
                (
                    (*loc, key),
                    f"unknown label(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})",
                )
            )


def _kpi(index: int, kpi: Kpi, spec: Spec, problems: Problems) -> None:
    at: Loc = ("kpis", index)
    known = set(promql.source_labels(spec, kpi))
    for j, threshold in enumerate(kpi.alerts):
        loc: Loc = (*at, "alerts", j)
        _threshold(loc, spec, threshold, known, problems)
        _name((*loc, "name"), threshold_alert_name(kpi.name, threshold), problems)
        window = threshold.rate or threshold.increase
        key = "rate" if threshold.rate else "increase"
        if kpi.type == "histogram":
            problems.append(
                (loc, "thresholds on a histogram need a quantile: write a free-form alert")
            )
        elif window is not None and kpi.type != "counter":
            problems.append(((*loc, key), f"'{key}' is for counters; {kpi.name} is a {kpi.type}"))
        elif window is None and kpi.type == "counter" and threshold.below is not None:
            problems.append(
                (
                    (*loc, "below"),
                    "a counter only grows: 'below' on a counter needs 'rate' or 'increase'",
                )
            )
        if window is not None:
            _window((*loc, key), f"the {key} window", window, [kpi], spec, problems)
            if threshold.below is not None and threshold.below <= 0:
                problems.append(((*loc, "below"), f"a {key} is never below {threshold.below:g}"))
    for key in ("absent_for", "no_increase_for"):
        value = getattr(kpi, key)
        if value is not None:
            _window((*at, key), key, value, [kpi], spec, problems)
    for key in ("anomaly", "forecast"):
        if getattr(kpi, key) is not None and kpi.type != "gauge":
            problems.append(((*at, key), f"'{key}' is for gauges; {kpi.name} is a {kpi.type}"))
    if kpi.anomaly is not None:
        anomaly = kpi.anomaly
        _window(
            (*at, "anomaly", "window"), "the anomaly window", anomaly.window, [kpi], spec, problems
        )
        if anomaly.for_ * (1 + anomaly.zscore**2) >= anomaly.window:
            problems.append(
                (
                    (*at, "anomaly", "for"),
                    "a lasting change stops being an anomaly before 'for' ends: keep "
                    "for * (1 + zscore^2) under the window",
                )
            )
    if kpi.forecast is not None:
        window = kpi.forecast.window
        _window((*at, "forecast", "window"), "the forecast window", window, [kpi], spec, problems)


def _ratio(index: int, ratio: Ratio, spec: Spec, problems: Problems) -> None:
    at: Loc = ("ratios", index)
    kpis = promql.ratio_kpis(spec, ratio)
    if len(kpis) != len({ratio.good, *ratio.total}):
        return  # unknown counters are reported by reference_errors
    _window((*at, "window"), "the ratio window", ratio.window, kpis, spec, problems)
    known = set(ratio_labels(spec, ratio))
    for j, threshold in enumerate(ratio.alerts):
        loc: Loc = (*at, "alerts", j)
        _threshold(loc, spec, threshold, known, problems)
        name = threshold.name or promql.camel(ratio.name) + "Low"
        _name((*loc, "name"), name, problems)
        if threshold.rate is not None or threshold.increase is not None:
            problems.append((loc, "a ratio is already a rate: drop 'rate' and 'increase'"))
    if ratio.slo is not None:
        shortest = min(w.short for w in BURN_WINDOWS)
        _window((*at, "slo"), "the SLO's shortest burn-rate window", shortest, kpis, spec, problems)
        if set(ratio.total) <= {ratio.good}:
            problems.append(
                ((*at, "total"), "an SLO needs a total with more than the good counter")
            )
        _name((*at, "name"), burn_alert_name(ratio), problems)


def rule_errors(spec: Spec) -> Problems:
    """Everything the rules generator would refuse, with the spec path of its field."""
    problems: Problems = []
    for index, kpi in enumerate(spec.kpis):
        _kpi(index, kpi, spec, problems)
    for index, ratio in enumerate(spec.ratios):
        _ratio(index, ratio, spec, problems)
    for index, alert in enumerate(spec.alerts):
        at: Loc = ("alerts", index)
        _summary((*at, "summary"), alert.summary, problems)
        for name, value in alert.labels.items():
            if "{{" in value or "$value" in value:
                problems.append(((*at, "labels", name), "labels are static: no templates"))
            if name in ("severity", "kpi"):
                problems.append(((*at, "labels", name), f"set {name!r} with its own key"))
    return problems
