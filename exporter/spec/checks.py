"""Spec checks pydantic cannot do field by field: cross-references (names, databases, counters,
dashboard entries) and what the generated rules need (windows, labels, alert names, templates).

Each problem comes with the path of its field, so loading.py can point at the file and line."""

from __future__ import annotations

import fnmatch
import math
import re

from exporter.conventions import (
    BURN_WINDOWS,
    burn_alert_name,
    format_duration,
    freshness_burn_alert_name,
    latency_burn_alert_name,
    ratio_alert_name,
    threshold_alert_name,
)
from exporter.spec.fields import is_glob
from exporter.spec.labels import ratio_kpis, ratio_labels, source_labels
from exporter.spec.model import Kpi, Loc, Ratio, Spec, Threshold
from exporter.spec.templates import check as template_problem

Problems = list[tuple[Loc, str]]


def reference_errors(spec: Spec) -> Problems:
    """Cross-references pydantic cannot see: each problem with the path of its field."""
    problems: Problems = []
    seen: set[str] = set()
    for index, kpi in enumerate(spec.kpis):
        if kpi.name in seen:
            problems.append((("kpis", index, "name"), f"duplicate KPI {kpi.name!r}"))
        seen.add(kpi.name)
        _kpi_databases(index, kpi, spec, problems)
        clash = set(kpi.labels) & set(spec.exporter.labels)
        if clash:
            problems.append(
                (
                    ("kpis", index, "labels"),
                    f"{', '.join(sorted(clash))} clash with exporter.labels",
                )
            )
    problems += _database_label_errors(spec)
    counters = {spec.metric_name(k) for k in spec.kpis if k.type == "counter"}
    ratio_names: set[str] = set()
    for index, ratio in enumerate(spec.ratios):
        if ratio.name in ratio_names or ratio.name in seen:
            problems.append((("ratios", index, "name"), f"duplicate name {ratio.name!r}"))
        ratio_names.add(ratio.name)
        for key, names in (("good", [ratio.good]), ("total", ratio.total)):
            for name in names:
                if name not in counters:
                    problems.append(
                        (("ratios", index, key), f"{name!r} is not a counter KPI of this spec")
                    )
    alert_names: set[str] = set()
    for index, alert in enumerate(spec.alerts):
        if alert.name in alert_names:
            problems.append((("alerts", index, "name"), f"duplicate alert {alert.name!r}"))
        alert_names.add(alert.name)
    record_names: set[str] = set()
    for index, record in enumerate(spec.records):
        if record.record in record_names:
            problems.append((("records", index, "record"), f"duplicate record {record.record!r}"))
        record_names.add(record.record)
    panels = seen | ratio_names | record_names
    for d, dashboard in enumerate(spec.dashboards):
        for r, row in enumerate(dashboard.rows):
            for k, name in enumerate(row.kpis):
                if name not in panels:
                    problems.append(
                        (
                            ("dashboards", d, "rows", r, "kpis", k),
                            f"{name!r} is not a KPI, ratio or record of this spec",
                        )
                    )
        problems.extend(_red_errors(spec, d))
    return problems


def _red_errors(spec: Spec, index: int) -> Problems:
    """A dashboard's `red` names KPIs (and a ratio for errors) of the kinds each signal reads."""
    red = spec.dashboards[index].red
    if not red:
        return []
    types = {kpi.name: kpi.type for kpi in spec.kpis}
    ratios = {ratio.name for ratio in spec.ratios}
    wanted = {
        "duration": ({"histogram"}, "a histogram KPI"),
        "rate": ({"counter", "histogram"}, "a counter or histogram KPI"),
        "errors": ({"counter", "ratio"}, "a counter KPI or a ratio"),
    }
    problems: Problems = []
    for key, (kinds, what) in wanted.items():
        name = getattr(red, key)
        kind = "ratio" if name in ratios else types.get(name or "")
        if name is not None and kind not in kinds:
            found = f"a {kind}" if kind else "not in this spec"
            problems.append(
                (("dashboards", index, "red", key), f"{name!r} is {found}: name {what}")
            )
    return problems


def _kpi_databases(index: int, kpi: Kpi, spec: Spec, problems: Problems) -> None:
    """Each `database:` entry names a defined database or is a glob matching one; the labels
    of those databases (and the database label) do not clash with the KPI's labels."""
    defined = ", ".join(sorted(spec.databases)) or "none"
    at: Loc = ("kpis", index, "database")
    for position, pattern in enumerate(kpi.database_patterns):
        loc = at if isinstance(kpi.database, str) else (*at, position)
        if is_glob(pattern):
            if not any(fnmatch.fnmatchcase(name, pattern) for name in spec.databases):
                problems.append((loc, f"glob {pattern!r} matches no database ({defined})"))
        elif pattern not in spec.databases:
            problems.append((loc, f"unknown database {pattern!r} ({defined})"))
    label = spec.exporter.database_label
    if kpi.spans_databases and label in kpi.labels:
        problems.append(
            (
                ("kpis", index, "labels"),
                f"{label} is exporter.database_label, which names the database of each series "
                "of a KPI on several databases; rename the column or set database_label",
            )
        )
    for name in spec.databases_of(kpi):
        database = spec.databases.get(name)
        clash = set(kpi.labels) & set(database.labels if database else ())
        if clash:
            problems.append(
                (
                    ("kpis", index, "labels"),
                    f"{', '.join(sorted(clash))} clash with databases.{name}.labels",
                )
            )


def _database_label_errors(spec: Spec) -> Problems:
    """A database's constant labels may not redefine the exporter's labels or the label that
    names the database; nor may the exporter's labels, once a KPI spans databases."""
    problems: Problems = []
    label = spec.exporter.database_label
    for name, database in spec.databases.items():
        for key in sorted(database.labels):
            if key in spec.exporter.labels:
                why = "clashes with exporter.labels"
            elif key == label:
                why = "is exporter.database_label, set from the database's name"
            else:
                continue
            problems.append((("databases", name, "labels", key), f"{key} {why}"))
    if label in spec.exporter.labels and any(k.spans_databases for k in spec.kpis):
        problems.append(
            (
                ("exporter", "labels", label),
                f"{label} is exporter.database_label, which names the database of each series "
                "of a KPI on several databases",
            )
        )
    return problems


MAX_ALERT_NAME = 40
_QUANTILE_BOUND = re.compile(r"\)\s*(?:>=|<=|>|<)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")


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
                f"{what} {format_duration(window)} is under 2 scrape intervals "
                f"(exporter.scrape_interval {format_duration(scrape)})",
            )
        )
    for kpi in kpis:
        if window < 2 * kpi.period:
            problems.append(
                (
                    loc,
                    f"{what} {format_duration(window)} is under 2 poll intervals of {kpi.name} "
                    f"(every {format_duration(kpi.period)})",
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
    known = set(source_labels(spec, kpi))
    for j, threshold in enumerate(kpi.alerts):
        loc: Loc = (*at, "alerts", j)
        _threshold(loc, spec, threshold, known, problems)
        name = threshold_alert_name(
            kpi.name, threshold.name, threshold.compared, threshold.above is not None
        )
        _name((*loc, "name"), name, problems)
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
        if anomaly.window < 2 * 3600 or anomaly.for_ >= anomaly.window - 3600:
            problems.append(
                (
                    (*at, "anomaly", "window"),
                    "the anomaly window is the season compared with (1d, 1w): at least 2h, "
                    "and 'for' under the window minus the baseline's hour",
                )
            )
    _kpi_slos(at, kpi, spec, problems)
    if kpi.forecast is not None:
        forecast = kpi.forecast
        if forecast.near is None and (forecast.above == 0 or forecast.below == 0):
            problems.append(
                ((*at, "forecast", "near"), "a forecast to 0 needs 'near' (fire once past it)")
            )
        window = forecast.window
        _window((*at, "forecast", "window"), "the forecast window", window, [kpi], spec, problems)


def _kpi_slos(at: Loc, kpi: Kpi, spec: Spec, problems: Problems) -> None:
    """A latency SLO needs a histogram with a bucket at its latency; both SLOs need alert names
    that fit, and windows their KPI's polls can fill."""
    shortest = min(w.short for w in BURN_WINDOWS)
    if kpi.slo is not None:
        slo = kpi.slo
        if kpi.type != "histogram":
            problems.append(
                (
                    (*at, "slo"),
                    f"a KPI's slo is a latency SLO, for histograms; {kpi.name} is a {kpi.type} "
                    "(a success SLO over counters is a ratio's slo)",
                )
            )
        elif kpi.buckets is not None and not any(abs(b - slo.latency) < 1e-9 for b in kpi.buckets):
            listed = ", ".join(f"{b:g}" for b in kpi.buckets)
            problems.append(
                (
                    (*at, "slo", "latency"),
                    f"{slo.latency:g}s is not a bucket bound of {kpi.name} ({listed}): the SLO "
                    "counts the events of the bucket at its latency; add it to 'buckets'",
                )
            )
        what = "the SLO's shortest burn-rate window"
        _window((*at, "slo"), what, shortest, [kpi], spec, problems)
        _name((*at, "slo", "name"), slo.name or latency_burn_alert_name(kpi.name), problems)
    if kpi.freshness is not None:
        freshness = kpi.freshness
        _window((*at, "freshness", "max_age"), "max_age", freshness.max_age, [kpi], spec, problems)
        name = freshness.name or freshness_burn_alert_name(kpi.name)
        _name((*at, "freshness", "name"), name, problems)


def _ratio(index: int, ratio: Ratio, spec: Spec, problems: Problems) -> None:
    at: Loc = ("ratios", index)
    kpis = ratio_kpis(spec, ratio)
    if len(kpis) != len({ratio.good, *ratio.total}):
        return  # unknown counters are reported by reference_errors
    _window((*at, "window"), "the ratio window", ratio.window, kpis, spec, problems)
    known = set(ratio_labels(spec, ratio))
    for j, threshold in enumerate(ratio.alerts):
        loc: Loc = (*at, "alerts", j)
        _threshold(loc, spec, threshold, known, problems)
        name = ratio_alert_name(ratio.name, threshold.name, threshold.above is not None)
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
        _name((*at, "name"), burn_alert_name(ratio.name), problems)


def _quantile_bound(at: Loc, expr: str, spec: Spec, problems: Problems) -> None:
    """`histogram_quantile(…<kpi>_bucket…) > N` with N between two buckets reads an interpolated
    guess: requests of 1.1-1.5 s between buckets 1 and 2.5 read as a p95 of 2.4 s."""
    call = expr.find("histogram_quantile")
    if call < 0:
        return
    bounds = [float(m.group(1)) for m in _QUANTILE_BOUND.finditer(expr, call)]
    for kpi in spec.kpis:
        name = spec.metric_name(kpi)
        if not kpi.buckets or not re.search(rf"(?<![\w:]){name}_bucket\b", expr):
            continue
        for value in bounds[:1]:  # the comparison right after the quantile's closing bracket
            if not any(abs(b - value) < 1e-12 for b in kpi.buckets):
                listed = ", ".join(f"{b:g}" for b in kpi.buckets)
                problems.append(
                    (
                        (*at, "expr"),
                        f"{value:g} is not a bucket boundary of {name} ({listed}): the quantile "
                        "there is interpolated; add the bucket to the KPI's buckets",
                    )
                )


_LE_MATCHER = re.compile(r'(?<![\w])le\s*(=~|=)\s*"([^"]*)"')


def _bucket_matchers(at: Loc, expr: str, spec: Spec, problems: Problems) -> None:
    """A latency bound written as `<kpi>_bucket{le="N"}` (a share of requests slower than N)
    with N not a bucket boundary selects no series: the alert never fires."""
    for kpi in spec.kpis:
        name = spec.metric_name(kpi)
        if not kpi.buckets:
            continue
        for selector in re.finditer(rf"(?<![\w:]){name}_bucket\s*\{{([^}}]*)\}}", expr):
            for op, text in _LE_MATCHER.findall(selector.group(1)):
                for value in text.split("|") if op == "=~" else [text]:
                    try:
                        bound = float(value)
                    except ValueError:
                        continue  # +Inf, or a pattern this check does not read
                    if bound != math.inf and not any(abs(b - bound) < 1e-12 for b in kpi.buckets):
                        listed = ", ".join(f"{b:g}" for b in kpi.buckets)
                        problems.append(
                            (
                                (*at, "expr"),
                                f'le="{value}" is not a bucket boundary of {name} ({listed}): '
                                "the selector reads no series; add the bucket to the KPI's buckets",
                            )
                        )


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
        _quantile_bound(at, alert.expr, spec, problems)
        _bucket_matchers(at, alert.expr, spec, problems)
    for index, record in enumerate(spec.records):
        _bucket_matchers(("records", index), record.expr, spec, problems)
        for name, value in alert.labels.items():
            if "{{" in value or "$value" in value:
                problems.append(((*at, "labels", name), "labels are static: no templates"))
            if name in ("severity", "kpi"):
                problems.append(((*at, "labels", name), f"set {name!r} with its own key"))
    return problems


def spec_errors(spec: Spec) -> Problems:
    """Every problem of a spec pydantic has validated: references first, then rule needs."""
    return reference_errors(spec) + rule_errors(spec)
