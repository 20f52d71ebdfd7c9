"""Grafana dashboards generated from the KPI spec: plain JSON, provisioning file and README."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.conventions import (
    BURN_WINDOWS,
    REASONS,
    budget_record_name,
    error_ratio_record_name,
    format_duration,
)
from exporter.conventions import SelfMetric as M
from exporter.generation.promql import (
    histogram_quantile,
    kpi_value,
    parse_matchers,
    quote,
)
from exporter.generation.rules.slo import error_budget
from exporter.spec.labels import ratio_labels, source_labels
from exporter.spec.model import Dashboard, FreeRecord, Kpi, PanelKind, Ratio, Spec, Threshold
from exporter.spec.model import Target as Goal

SCHEMA_VERSION = 41  # Grafana 11.6's dashboard schema; the SDK test pins the same build
TAG = "kpi-exporter"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HEALTH_UID = "kpi-exporter-health"
ALL_KPIS_UID = "kpi-exporter-all-kpis"
PROVISIONING_PATH = "provisioning/dashboards.yaml"
GRID_WIDTH = 24
HEIGHT = 8
QUANTILES = (0.5, 0.95, 0.99)
TARGET_WIDTH = 6

JSON = dict[str, Any]

SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}
OFF_TARGET = "yellow"
OK = "green"
_RANK = {OK: 0, OFF_TARGET: 1, "blue": 2, "orange": 3, "red": 4}

# KPI units (free text in the spec) to Grafana unit ids; a Grafana id passes through as is.
_UNIT_ALIASES = {
    "": "short",
    "count": "short",
    "seconds": "s",
    "second": "s",
    "milliseconds": "ms",
    "millisecond": "ms",
    "ratio": "percentunit",
    "fraction": "percentunit",
    "usd": "currencyUSD",
    "dollars": "currencyUSD",
    "eur": "currencyEUR",
    "euros": "currencyEUR",
    "gbp": "currencyGBP",
    "bytes": "bytes",
    "byte": "bytes",
}
# a subset of Grafana's unit ids (packages/grafana-data/src/valueFormats/categories.ts)
_UNIT_IDS = (
    "none short percent percentunit sishort locale s ms µs ns m h d dtdurations dtdurationms "
    "bytes decbytes bits decbits kbytes mbytes gbytes currencyUSD currencyEUR currencyGBP "
    "currencyJPY currencyCHF currencyINR cps ops reqps rps wps iops cpm opm rpm wpm "
    "dateTimeAsIso dateTimeFromNow bool bool_yes_no bool_on_off celsius"
)
GRAFANA_UNITS = frozenset(_UNIT_IDS.split())


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str
    instant: bool = False
    table: bool = False
    heatmap: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel before layout: what it shows, how wide it is, and a key its id derives from."""

    key: str
    kind: str
    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    width: int = 12
    steps: tuple[tuple[float | None, str], ...] = ((None, OK),)
    minimum: float | None = None
    maximum: float | None = None
    axis_label: str = ""
    mappings: tuple[tuple[str, str, str], ...] = ()  # value, text, color
    new_line: bool = False  # start on a new grid line (the first panel of a KPI)


@dataclass(frozen=True)
class Row:
    """A titled row of panels."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Board:
    """A dashboard before rendering."""

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    time_from: str = "now-24h"


# ---------------------------------------------------------------------------- PromQL text


def selector(
    metric: str,
    matchers: Iterable[tuple[str, str]] = (),
    instance: bool = True,
    job: bool = True,
) -> str:
    """A vector selector with the dashboard's $job/$instance matchers and exact-match extras."""
    parts = ['job=~"$job"'] if job else []
    if instance:
        parts.append('instance=~"$instance"')
    parts.extend(f"{name}={quote(value)}" for name, value in sorted(matchers))
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)}) " if labels else ""


def _legend(labels: Sequence[str], fallback: str) -> str:
    return " ".join("{{" + label + "}}" for label in labels) if labels else fallback


def rate(metric_selector: str) -> str:
    return f"rate({metric_selector}[$__rate_interval])"


def value(spec: Spec, item: Kpi | Ratio) -> str:
    """The KPI's or ratio's one value (target panels), over the dashboard's $job/$instance."""
    return kpi_value(spec, item, selector(""), "$__rate_interval")


def increase_over_range(metric_selector: str) -> str:
    return f"increase({metric_selector}[$__range])"


def quantile(q: float, bucket_selector: str, labels: Sequence[str]) -> str:
    return histogram_quantile(q, rate(bucket_selector), labels)


def _recorded_legend(spec: Spec, ratio: Ratio) -> str:
    """Legend for a ratio's recorded series: the labels the rules keep, beyond job and the
    exporter's constant labels."""
    kept = [
        label
        for label in ratio_labels(spec, ratio)
        if label != "job" and label not in spec.exporter.labels
    ]
    return _legend(kept, "{{job}}")


# ---------------------------------------------------------------------------- units, thresholds


def grafana_unit(unit: str) -> str:
    """Grafana's unit id for a KPI unit; free text (tokens, users) shows as a plain number."""
    if unit in GRAFANA_UNITS:
        return unit
    return _UNIT_ALIASES.get(unit.strip().lower(), "short")


def _unit_words(kpi: Kpi) -> str:
    return kpi.unit if kpi.unit and grafana_unit(kpi.unit) == "short" else ""


@dataclass(frozen=True)
class Bound:
    """A value boundary on a panel: beyond it (above or below) the colour applies."""

    value: float
    above: bool
    color: str
    note: str = ""  # where the bound comes from, when the panel shows more than it applies to


def bounds_for(alerts: Iterable[Threshold], target: Goal | None, view: str) -> list[Bound]:
    """Alert thresholds and the target that apply to a panel showing `view` (value or rate)."""
    result = []
    for alert in alerts:
        bound = alert.above if alert.above is not None else alert.below
        assert bound is not None
        if view == "rate":
            if alert.rate is not None:
                value = bound
            elif alert.increase is not None:
                value = bound / alert.increase  # the same mean rate over the alert's window
            else:
                continue
        elif alert.rate is not None or alert.increase is not None:
            continue
        else:
            value = bound
        result.append(Bound(value, alert.above is not None, SEVERITY_COLORS[alert.severity]))
    if target is not None:
        # the wrong side of the target is yellow: off target, though no alert
        result.append(Bound(target.value, target.direction == "below", OFF_TARGET))
    return result


def steps_for(bounds: Sequence[Bound]) -> tuple[tuple[float | None, str], ...]:
    """Grafana threshold steps (ascending) colouring each interval by its worst violated bound."""
    points = sorted({b.value for b in bounds})
    if not points:
        return ((None, OK),)

    def color_at(x: float) -> str:
        worst = OK
        for b in bounds:
            if (b.above and x > b.value) or (not b.above and x < b.value):
                worst = max(worst, b.color, key=_RANK.__getitem__)
        return worst

    samples = [points[0] - 1.0]
    samples += [(a + b) / 2 for a, b in itertools.pairwise(points)]
    samples.append(points[-1] + 1.0)
    steps: list[tuple[float | None, str]] = [(None, color_at(samples[0]))]
    for point, sample in zip(points, samples[1:], strict=True):
        color = color_at(sample)
        if color != steps[-1][1]:
            steps.append((point, color))
    return tuple(steps)


def _describe_bounds(bounds: Sequence[Bound], per_second: bool) -> str:
    words = {"red": "critical", "orange": "warning", "blue": "info", OFF_TARGET: "off target"}
    suffix = "/s" if per_second else ""
    parts = [
        f"{words[b.color]} {'above' if b.above else 'below'} {b.value:g}{suffix}"
        + (f" ({b.note})" if b.note else "")
        for b in sorted(bounds, key=lambda b: (b.value, b.color, b.note))
    ]
    return f" Thresholds: {', '.join(parts)}." if parts else ""


# ---------------------------------------------------------------------------- panels per KPI


def _help(text: str, fallback: str) -> str:
    text = " ".join(text.split())
    if not text:
        return fallback
    return text if text.endswith(".") else text + "."


_ACRONYMS = {"http": "HTTP", "api": "API", "usd": "USD", "eur": "EUR", "sql": "SQL", "id": "ID"}
_UNIT_SUFFIXES = ("_total", "_seconds", "_bytes", "_ratio")


def _title(name: str) -> str:
    """`http_request_duration_seconds` -> `HTTP request duration` (units live on the axis)."""
    for suffix in _UNIT_SUFFIXES:
        name = name.removesuffix(suffix)
    words = [_ACRONYMS.get(word, word) for word in name.split("_") if word]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _headline(kind: PanelKind) -> str | None:
    """The panel kind for a KPI's headline value; None when it asked for a trend or a heatmap."""
    return None if kind in ("timeseries", "heatmap") else kind


def _headline_width(kind: str) -> int:
    return 12 if kind in ("bargauge", "table") else 6


def _as_kind(target: Target, kind: str) -> Target:
    """A table shows the latest value per series: an instant query in table format."""
    if kind != "table":
        return target
    return Target(target.expr, target.legend, instant=True, table=True)


def kpi_panels(spec: Spec, kpi: Kpi) -> tuple[Panel, ...]:
    """The panels that show one KPI, chosen by its type and its `panel` override."""
    if kpi.type == "gauge":
        return _gauge_panels(spec, kpi)
    if kpi.type == "counter":
        return _counter_panels(spec, kpi)
    return _histogram_panels(spec, kpi)


def _gauge_panels(spec: Spec, kpi: Kpi) -> tuple[Panel, ...]:
    """Latest value (stat with sparkline unless overridden) and the trend by label."""
    metric = spec.metric_name(kpi)
    # a gauge is a state read from the database: replicas report the same value, so max
    expr = f"max{_by(kpi.labels)}({selector(metric)})"
    legend = _legend(kpi.labels, _title(kpi.name))
    unit = grafana_unit(kpi.unit)
    bounds = bounds_for(kpi.alerts, kpi.target, "value")
    steps = steps_for(bounds)
    description = _help(kpi.help, f"Gauge {metric}.") + _describe_bounds(bounds, False)
    limits = (0.0, 1.0) if unit == "percentunit" else (None, None)
    kind = kpi.panel or "stat"
    headline = _headline(kind)
    panels: list[Panel] = []
    if headline is not None:
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/value",
                kind=headline,
                title=_title(kpi.name),
                description=description,
                targets=(_as_kind(Target(expr, legend), headline),),
                unit=unit,
                width=_headline_width(headline),
                steps=steps,
                minimum=limits[0],
                maximum=limits[1],
            )
        )
    panels.append(
        Panel(
            key=f"kpi/{kpi.name}/trend",
            kind="heatmap" if kind == "heatmap" else "timeseries",
            title=f"{_title(kpi.name)} over time",
            description=description,
            targets=(Target(expr, legend),),
            unit=unit,
            width=GRID_WIDTH - sum(p.width for p in panels) - _target_width(kpi),
            steps=steps,
            minimum=limits[0],
            maximum=limits[1],
            axis_label=_unit_words(kpi),
        )
    )
    panels.extend(_target_panel(kpi, value(spec, kpi), unit, limits))
    return tuple(panels)


def _counter_panels(spec: Spec, kpi: Kpi) -> tuple[Panel, ...]:
    """Increase over the dashboard's range (stat or bars) and the per-second rate by label."""
    metric = spec.metric_name(kpi)
    labels = kpi.labels
    unit = grafana_unit(kpi.unit)
    help_text = _help(kpi.help, f"Counter {metric}.")
    title = _title(kpi.name)
    kind = kpi.panel or "stat"
    headline = _headline(kind)
    panels: list[Panel] = []
    if headline is not None:
        targets = [Target(f"sum({increase_over_range(selector(metric))})", "total")]
        if labels and headline in ("bargauge", "table"):
            by_labels = f"sum{_by(labels)}({increase_over_range(selector(metric))})"
            targets.append(Target(by_labels, _legend(labels, title)))
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/increase",
                kind=headline,
                title=f"{title} (range total)",
                description=f"{help_text} Increase over the dashboard's time range"
                + (", in total and by " + ", ".join(labels) if len(targets) > 1 else "")
                + ".",
                targets=tuple(_as_kind(t, headline) for t in targets),
                unit=unit,
                width=_headline_width(headline),
            )
        )
    # one rate view over all series, and one per set of matchers an alert narrows them to
    views: dict[tuple[tuple[str, str], ...], list[Threshold]] = {(): []}
    for alert in kpi.alerts:
        views.setdefault(tuple(sorted(alert.matchers.items())), []).append(alert)
    constant = sorted(spec.exporter.labels)
    for matchers, alerts in views.items():
        bounds = bounds_for(alerts, None if matchers else kpi.target, "rate")
        narrowed = rate(selector(metric, matchers))
        targets = [Target(f"sum({narrowed})", "total")]
        if constant:
            targets.append(Target(f"sum{_by(constant)}({narrowed})", _legend(constant, "")))
        if labels:
            targets.append(Target(f"sum{_by(labels)}({narrowed})", _legend(labels, title)))
        where = ", ".join(f"{name}={value}" for name, value in matchers)
        used = sum(p.width for p in panels)
        breakdown = [*(["total"]), *([", ".join(constant)] if constant else []), *labels]
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/rate" + "".join(f"/{k}={v}" for k, v in matchers),
                kind="heatmap" if kind == "heatmap" and not matchers else "timeseries",
                title=f"{title} per second" + (f" ({where})" if where else ""),
                description=f"{help_text} Per-second rate"
                + (f" of series with {where}" if where else "")
                + f": {', '.join(breakdown)}."
                + _describe_bounds(bounds, True),
                targets=tuple(targets),
                unit=unit,
                width=GRID_WIDTH - used - _target_width(kpi) if not matchers else 12,
                steps=steps_for(bounds),
                axis_label=f"{_unit_words(kpi) or 'events'}/s",
            )
        )
    panels.extend(_target_panel(kpi, value(spec, kpi), unit, (None, None)))
    return tuple(panels)


def _histogram_panels(spec: Spec, kpi: Kpi) -> tuple[Panel, ...]:
    """p50/p95/p99 over all series, a heatmap of the buckets, and p95 by label."""
    metric = spec.metric_name(kpi)
    bucket = selector(f"{metric}_bucket")
    labels = kpi.labels
    unit = grafana_unit(kpi.unit)
    title = _title(kpi.name)
    help_text = _help(kpi.help, f"Histogram {metric}.")
    bounds = bounds_for(kpi.alerts, kpi.target, "value")
    alerts = quantile_alert_bounds(spec, kpi)
    p95_bounds = [*bounds, *alerts.get(0.95, [])]
    steps = steps_for(p95_bounds)
    every = [*bounds, *(b for q in QUANTILES for b in alerts.get(q, []))]
    by_label = Target(quantile(0.95, bucket, labels), _legend(labels, "p95"))
    kind = kpi.panel or "timeseries"
    headline = _headline(kind)
    panels: list[Panel] = []
    if headline is not None:
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/p95",
                kind=headline,
                title=f"{title} p95",
                description=f"{help_text} 95th percentile"
                + (" by " + ", ".join(labels) if labels else "")
                + "."
                + _describe_bounds(p95_bounds, False),
                targets=(_as_kind(by_label, headline),),
                unit=unit,
                width=_headline_width(headline),
                steps=steps,
            )
        )
    free = GRID_WIDTH - sum(p.width for p in panels)
    panels.append(
        Panel(
            key=f"kpi/{kpi.name}/quantiles",
            kind="timeseries",
            title=f"{title} p50 / p95 / p99",
            description=f"{help_text} Quantiles over all series." + _describe_bounds(every, False),
            targets=tuple(Target(quantile(q, bucket, ()), f"p{q * 100:g}") for q in QUANTILES),
            unit=unit,
            width=free // 2,
            steps=steps_for(every),
        )
    )
    panels.append(
        Panel(
            key=f"kpi/{kpi.name}/heatmap",
            kind="heatmap",
            title=f"{title} distribution",
            description=f"{help_text} Observations per second in each bucket.",
            targets=(Target(f"sum by (le) ({rate(bucket)})", "{{le}}", heatmap=True),),
            unit=unit,
            width=free - free // 2,
        )
    )
    if labels:
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/p95-by-label",
                kind="timeseries",
                title=f"{title} p95 by {', '.join(labels)}",
                description=f"{help_text} 95th percentile by {', '.join(labels)}."
                + _describe_bounds(p95_bounds, False),
                targets=(by_label,),
                unit=unit,
                width=GRID_WIDTH - _target_width(kpi),
                steps=steps,
            )
        )
    panels.extend(_target_panel(kpi, value(spec, kpi), unit, (None, None)))
    return tuple(panels)


_COMPARED = re.compile(r"\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_QUANTILE_CALL = re.compile(r"\s*histogram_quantile\s*(\()\s*(\d*\.?\d+)\s*,")
_MATCHERS = r"\s*\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}"


def quantile_threshold(spec: Spec, kpi: Kpi, expr: str) -> tuple[float, bool, float] | None:
    """(Q, above, N) of an alert `histogram_quantile(Q, …<kpi>_bucket…) > N` over every series
    of the KPI (the rules' selector at most); None for any other shape."""
    text = _bare(expr)
    call = _QUANTILE_CALL.match(text)
    if call is None or re.search(r"(?<![\w:])offset(?![\w:])|@", text):
        return None
    close = _closing(text, call.start(1))
    compared = _COMPARED.fullmatch(text, close + 1) if close is not None else None
    q = float(call.group(2))
    if compared is None or not 0 < q < 1:
        return None
    bucket = f"{spec.metric_name(kpi)}_bucket"
    if _metric_names(text[call.end() : close]) != [bucket]:
        return None
    allowed = set(parse_matchers(spec.exporter.rule_selector()))
    for found in re.finditer(rf"(?<![\w:]){re.escape(bucket)}(?![\w:])({_MATCHERS})?", expr):
        try:
            matchers = parse_matchers(found.group(2) or "")
        except ValueError:
            return None
        if not set(matchers) <= allowed:
            return None  # narrowed to some series: not the panel's threshold
    return q, compared.group(1).startswith(">"), float(compared.group(2))


def quantile_alert_bounds(spec: Spec, kpi: Kpi) -> dict[float, list[Bound]]:
    """Bounds of the free-form quantile alerts on a histogram KPI, by quantile."""
    found: dict[float, list[Bound]] = {}
    for alert in spec.alerts:
        if alert.kpi not in (kpi.name, spec.metric_name(kpi)):
            continue
        reading = quantile_threshold(spec, kpi, alert.expr)
        if reading is not None:
            q, above, value = reading
            note = f"p{q * 100:g} alert {alert.name}"
            bound = Bound(value, above, SEVERITY_COLORS[alert.severity], note)
            found.setdefault(q, []).append(bound)
    return found


def _target_width(item: Kpi | Ratio) -> int:
    """Room kept beside the trend for the target panel."""
    return TARGET_WIDTH if item.target is not None else 0


def _target_panel(
    item: Kpi | Ratio, expr: str, unit: str, limits: tuple[float | None, float | None]
) -> tuple[Panel, ...]:
    """A stat with a sparkline: green on the target's side, yellow off it."""
    if item.target is None:
        return ()
    target = item.target
    side = "at or above" if target.direction == "above" else "at or below"
    what = (
        "the per-second rate" if isinstance(item, Kpi) and item.type == "counter" else "the value"
    )
    if isinstance(item, Kpi) and item.type == "histogram":
        what = "the 95th percentile"
    return (
        Panel(
            key=f"target/{item.name}",
            kind="stat",
            title=f"{_title(item.name)} vs target",
            description=f"Target: {what} {side} {target.value:g}. Green on target, yellow off "
            "target; the sparkline shows the trend.",
            targets=(Target(expr, "current"),),
            unit=unit,
            width=TARGET_WIDTH,
            steps=steps_for(bounds_for((), target, "value")),
            minimum=limits[0],
            maximum=limits[1],
        ),
    )


def ratio_panels(spec: Spec, ratio: Ratio) -> tuple[Panel, ...]:
    """A ratio: a gauge (0-1) of the overall value and the recorded ratio's trend by label."""
    title = _title(ratio.name)
    bounds = bounds_for(ratio.alerts, ratio.target, "value")
    steps = steps_for(bounds)
    window = format_duration(ratio.window)
    total = " + ".join(ratio.total)
    help_text = _help(ratio.help, f"{ratio.good} / ({total}).")
    overall = value(spec, ratio)
    recorded = selector(ratio.record_name, instance=False)
    legend = _recorded_legend(spec, ratio)
    kind = ratio.panel or "gauge"
    headline = _headline(kind)
    panels: list[Panel] = []
    if headline is not None:
        panels.append(
            Panel(
                key=f"ratio/{ratio.name}/value",
                kind=headline,
                title=title,
                description=f"{help_text} {ratio.good} / ({total}) over all series, computed "
                "from the counters." + _describe_bounds(bounds, False),
                targets=(_as_kind(Target(overall, "ratio"), headline),),
                unit="percentunit",
                width=_headline_width(headline),
                steps=steps,
                minimum=0.0,
                maximum=1.0,
            )
        )
    panels.append(
        Panel(
            key=f"ratio/{ratio.name}/trend",
            kind="timeseries",
            title=f"{title} over time",
            description=f"{help_text} The recording rule {ratio.record_name} (rates over "
            f"{window})." + _describe_bounds(bounds, False),
            targets=(Target(recorded, legend),),
            unit="percentunit",
            width=GRID_WIDTH - sum(p.width for p in panels) - _target_width(ratio),
            steps=steps,
            minimum=0.0,
            maximum=1.0,
        )
    )
    panels.extend(_target_panel(ratio, overall, "percentunit", (0.0, 1.0)))
    return tuple(panels)


def slo_panels(spec: Spec, ratio: Ratio) -> tuple[Panel, ...]:
    """Objective, SLI over the SLO period, error budget remaining and burn rate of a ratio,
    from the recording rules the rules generator writes (generation/rules/slo.py)."""
    slo = ratio.slo
    assert slo is not None
    objective = slo.objective / 100
    period = format_duration(slo.period)
    budget = error_budget(slo)
    legend = _recorded_legend(spec, ratio)
    title = _title(ratio.name)
    error_ratio = selector(error_ratio_record_name(ratio.name, slo.period), instance=False)
    critical = [w for w in BURN_WINDOWS if w.severity == "critical"]
    warning = [w for w in BURN_WINDOWS if w.severity != "critical"]
    page = min(float(w.factor(slo.period)) for w in critical)
    ticket = min(float(w.factor(slo.period)) for w in warning)
    burns = [
        Target(
            f"{selector(error_ratio_record_name(ratio.name, w.long), instance=False)} / {budget}",
            f"{legend} {format_duration(w.long)}",
        )
        for w in critical
    ]
    return (
        Panel(
            key=f"slo/{ratio.name}/objective",
            kind="stat",
            title=f"{title} SLO objective",
            description=f"The objective: {slo.objective:g}% good events over {period}.",
            targets=(Target(f"vector({objective:g})", "objective"),),
            unit="percentunit",
            width=6,
        ),
        Panel(
            key=f"slo/{ratio.name}/sli",
            kind="stat",
            title=f"{title} SLI ({period})",
            description=f"Good events / all events over the SLO period ({period}): 1 minus the "
            f"recorded {error_ratio_record_name(ratio.name, slo.period)}. Red below the objective.",
            targets=(Target(f"1 - {error_ratio}", legend),),
            unit="percentunit",
            width=6,
            steps=steps_for([Bound(objective, False, "red")]),
            minimum=0.0,
            maximum=1.0,
        ),
        Panel(
            key=f"slo/{ratio.name}/budget",
            kind="stat",
            title=f"{title} error budget remaining",
            description=f"The recorded {budget_record_name(ratio.name)}: "
            "1 - (1 - SLI) / (1 - objective) "
            f"over {period}, the share of the error budget not yet spent; 0 or less when it is "
            "exhausted.",
            targets=(Target(selector(budget_record_name(ratio.name), instance=False), legend),),
            unit="percentunit",
            width=6,
            steps=((None, "red"), (0.0, "orange"), (0.25, OK)),
        ),
        Panel(
            key=f"slo/{ratio.name}/burn",
            kind="timeseries",
            title=f"{title} burn rate",
            description=f"Error ratio / error budget ({budget}) over the page alerts' long "
            f"windows: at 1 the budget lasts exactly {period}; tickets from {ticket:g} "
            f"(orange), pages from {page:g} (red).",
            targets=tuple(burns),
            unit="short",
            width=6,
            steps=((None, OK), (ticket, "orange"), (page, "red")),
        ),
    )


# ---------------------------------------------------------------------------- free-form records

# PromQL text the label reading skips: string literals (quoted or raw) and comments
_LITERALS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`|#[^\n]*')
_GROUPING = re.compile(r"\b(by|without)\s*\(([^()]*)\)")
_AGGREGATION = re.compile(
    r"(?<![\w:])(sum|avg|min|max|count|group|stddev|stdvar|quantile)(?![\w:])"
)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
# whose result labels a plain reading of by/without cannot tell: give up on these
_OPAQUE = frozenset(
    [
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "label_replace",
        "label_join",
        "topk",
        "bottomk",
        "limitk",
        "limit_ratio",
        "count_values",
        "absent",
        "absent_over_time",
        "scalar",
        "vector",
        "info",
        "sort_by_label",
    ]
)
_NOT_METRICS = frozenset(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"])


def _bare(expr: str) -> str:
    """PromQL with literals, comments, matcher contents and ranges blanked out."""
    text = _LITERALS.sub(lambda m: " " if m.group().startswith("#") else '""', expr)
    text = re.sub(r"\{[^{}]*\}", "{}", text)
    return re.sub(r"\[[^\]]*\]", " ", text)


def _closing(text: str, opening: int) -> int | None:
    """Index of the parenthesis closing the one at `opening`."""
    depth = 0
    for index in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return None


def _groupings(text: str) -> list[tuple[int, str, tuple[str, ...]]] | None:
    """Each aggregation's nesting depth, by/without, and label list (`sum(x)` is by ())."""
    found = []
    for match in _AGGREGATION.finditer(text):
        rest = text[match.end() :]
        prefix = _GROUPING.match(rest.lstrip())
        if prefix is None:
            opening = match.end() + len(rest) - len(rest.lstrip())
            if not text.startswith("(", opening):
                return None
            close = _closing(text, opening)
            if close is None:
                return None
            after = text[close + 1 :]
            prefix = _GROUPING.match(after.lstrip())
        kind, names = (prefix.group(1), prefix.group(2)) if prefix else ("by", "")
        labels = tuple(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
        depth = text.count("(", 0, match.start()) - text.count(")", 0, match.start())
        found.append((depth, kind, labels))
    return found


def _metric_names(text: str) -> list[str] | None:
    """The metric names a bare expression selects; None if it selects by {__name__=...} or
    uses a construct whose labels a plain reading cannot tell."""
    names: list[str] = []
    for match in _IDENTIFIER.finditer(_GROUPING.sub(" ", text)):
        word = match.group(1)
        if word in _OPAQUE:
            return None
        if not match.group(2) and word.lower() not in _NOT_METRICS:
            names.append(word)
    if re.search(r"(?<![\w:\s])\s*\{\}|^\s*\{\}", text):
        return None
    return names


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
    text = _bare(record.expr)
    groupings = _groupings(text)
    names = _metric_names(text)
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
    return _UNIT_ALIASES.get(metric.rsplit("_", 1)[-1].lower(), "short")


def record_title(name: str) -> str:
    """`job_queue_name:queue_job_duration_seconds:p95_rate5m` -> `Queue job duration
    (p95_rate5m) by queue_name`; the level's `job` goes unsaid."""
    level, metric, operations = _record_parts(name)
    title = _title(metric) + (f" ({operations})" if operations else "")
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
        legend = _legend(shown, "{{job}}" if keeps_job else _title(_record_parts(record.record)[1]))
    description = _help(record.help, f"The derived KPI {record.record}.")
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
            unit=record_unit(record.record),
            width=12,
        ),
    )


# ---------------------------------------------------------------------------- exporter health


def health_board() -> Board:
    """The exporter's own health: targets, KPI polls, query latency and errors, databases."""
    up_map = (("0", "down", "red"), ("1", "up", OK))
    ok_map = (("0", "failed", "red"), ("1", "ok", OK))
    overview = Row(
        "Targets",
        (
            Panel(
                "health/up",
                "stat",
                "Targets up",
                "Prometheus' up series for each exporter target: down means scrapes fail.",
                (Target(f"max by (instance) ({selector('up')})", "{{instance}}"),),
                width=6,
                steps=((None, "red"), (1.0, OK)),
                mappings=up_map,
            ),
            Panel(
                "health/databases",
                "stat",
                "Databases up",
                "1 if the exporter's last attempt to reach the database succeeded.",
                (Target(f"min by (database) ({selector(M.DATABASE_UP)})", "{{database}}"),),
                width=6,
                steps=((None, "red"), (1.0, OK)),
                mappings=up_map,
            ),
            Panel(
                "health/reload",
                "stat",
                "Last spec reload",
                "Whether the last load of the spec succeeded (a failed reload keeps the old one).",
                (
                    Target(
                        f"min by (instance) ({selector(M.RELOAD_OK)})",
                        "{{instance}}",
                    ),
                ),
                width=6,
                steps=((None, "red"), (1.0, OK)),
                mappings=ok_map,
            ),
            Panel(
                "health/reload-age",
                "stat",
                "Since last successful reload",
                "Time since the spec was last loaded successfully.",
                (
                    Target(
                        "time() - max by (instance) (" + selector(M.RELOAD_TIME) + ")",
                        "{{instance}}",
                    ),
                ),
                unit="s",
                width=6,
            ),
        ),
    )
    polls = Row(
        "KPI polls",
        (
            Panel(
                "health/kpi-up",
                "stat",
                "KPI queries up",
                "1 if the KPI's last poll succeeded; a failing KPI keeps serving its last good "
                "values.",
                (Target(f"min by (kpi) ({selector(M.KPI_UP)})", "{{kpi}}"),),
                width=12,
                steps=((None, "red"), (1.0, OK)),
                mappings=ok_map,
            ),
            Panel(
                "health/last-success-age",
                "bargauge",
                "Since last successful poll",
                "Age of each KPI's last good result; grows when its query fails.",
                (
                    Target(
                        "time() - max by (kpi) (" + selector(M.LAST_SUCCESS) + ")",
                        "{{kpi}}",
                    ),
                ),
                unit="s",
                width=12,
            ),
            Panel(
                "health/query-p95",
                "timeseries",
                "Query duration p95 by KPI",
                "95th percentile of each KPI's query time on its connection.",
                (
                    Target(
                        quantile(0.95, selector(M.QUERY_DURATION + "_bucket"), ["kpi"]),
                        "{{kpi}}",
                    ),
                ),
                unit="s",
                width=12,
            ),
            Panel(
                "health/errors",
                "timeseries",
                "Query errors by reason",
                f"Failed polls per second by KPI and reason ({', '.join(REASONS)}).",
                (
                    Target(
                        f"sum by (kpi, reason) ({rate(selector(M.QUERY_ERRORS))})",
                        "{{kpi}} {{reason}}",
                    ),
                ),
                unit="short",
                width=12,
                axis_label="errors/s",
            ),
            Panel(
                "health/series",
                "timeseries",
                "Series per KPI",
                "How many series each KPI publishes.",
                (Target(f"max by (kpi) ({selector(M.SERIES)})", "{{kpi}}"),),
                width=12,
            ),
            Panel(
                "health/rows",
                "timeseries",
                "Rows processed by cursor KPIs",
                "Event rows per second that cursor KPIs applied.",
                (
                    Target(
                        f"sum by (kpi) ({rate(selector(M.ROWS_PROCESSED))})",
                        "{{kpi}}",
                    ),
                ),
                width=12,
                axis_label="rows/s",
            ),
        ),
    )
    return Board(
        uid=HEALTH_UID,
        title="KPI exporter health",
        description="The exporter's own health: targets, KPI polls, query latency and errors, "
        "databases and spec reloads.",
        rows=(overview, polls),
        time_from="now-6h",
    )


# ---------------------------------------------------------------------------- boards from spec


def _slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:40].strip("-") or "dashboard"


def _unique(uid: str, taken: set[str]) -> str:
    candidate, n = uid, 2
    while candidate in taken:
        tail = f"-{n}"
        candidate, n = uid[: 40 - len(tail)] + tail, n + 1
    taken.add(candidate)
    return candidate


def _item_panels(spec: Spec, name: str) -> tuple[tuple[Panel, ...], tuple[Panel, ...]]:
    """Panels for a KPI, ratio or record name, and the SLO panels it adds (ratios with an SLO)."""
    for ratio in spec.ratios:
        if ratio.name == name:
            slo = slo_panels(spec, ratio) if ratio.slo is not None else ()
            return ratio_panels(spec, ratio), slo
    for record in spec.records:
        if record.record == name:
            return record_panels(spec, record), ()
    return kpi_panels(spec, spec.kpi(name)), ()


def _rows(spec: Spec, titled: Iterable[tuple[str, Sequence[str]]]) -> tuple[Row, ...]:
    records = {record.record for record in spec.records}
    rows: list[Row] = []
    for title, names in titled:
        panels: list[Panel] = []
        slo_rows: list[Row] = []
        for previous, name in zip((None, *names), names, strict=False):
            main, slo = _item_panels(spec, name)
            # a KPI starts a new line; records (half width) sit two to a line
            flows = name in records and previous in records
            panels.append(dataclasses.replace(main[0], new_line=not flows))
            panels.extend(main[1:])
            if slo:
                slo_rows.append(Row(f"SLO: {_title(name)}", slo))
        rows.append(Row(title, tuple(panels)))
        rows.extend(slo_rows)
    return tuple(rows)


def boards(spec: Spec) -> tuple[Board, ...]:
    """Every dashboard: the spec's own, 'All KPIs' for what none lists, and exporter health."""
    taken = {HEALTH_UID, ALL_KPIS_UID}
    result: list[Board] = []
    listed: set[str] = set()
    for dashboard in spec.dashboards:
        result.append(_board(spec, dashboard, taken))
        listed.update(name for row in dashboard.rows for name in row.kpis)
    left = [k for k in spec.kpis if k.name not in listed]
    ratios = [r.name for r in spec.ratios if r.name not in listed]
    records = [r.record for r in spec.records if r.record not in listed]
    if left or ratios or records:
        groups = []
        for kind, title in (
            ("gauge", "Gauges"),
            ("counter", "Counters"),
            ("histogram", "Histograms"),
        ):
            names = [k.name for k in left if k.type == kind]
            if names:
                groups.append((title, names))
        if ratios:
            groups.append(("Ratios", ratios))
        if records:
            groups.append(("Records", records))
        result.append(
            Board(
                uid=ALL_KPIS_UID,
                title="All KPIs",
                description="Every KPI, ratio and record of the spec that no other dashboard "
                "lists.",
                rows=_rows(spec, groups),
            )
        )
    result.append(health_board())
    return tuple(result)


def _board(spec: Spec, dashboard: Dashboard, taken: set[str]) -> Board:
    uid = _unique(dashboard.uid or _slug(dashboard.title), taken)
    return Board(
        uid=uid,
        title=dashboard.title,
        description=dashboard.description or f"{dashboard.title}, generated from the KPI spec.",
        rows=_rows(spec, ((row.title, row.kpis) for row in dashboard.rows)),
    )


# ---------------------------------------------------------------------------- rendering


def _panel_id(key: str, taken: set[int]) -> int:
    """A stable id from the panel's key, so links to a panel survive edits elsewhere."""
    number = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 1_000_000 + 1
    while number in taken:
        number += 1
    taken.add(number)
    return number


@dataclass
class _Layout:
    """Flow layout on Grafana's 24-column grid."""

    x: int = 0
    y: int = 0
    line_height: int = 0
    ids: set[int] = field(default_factory=set)

    def place(self, width: int, height: int) -> JSON:
        width = max(1, min(width, GRID_WIDTH))
        if self.x + width > GRID_WIDTH:
            self.newline()
        pos = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.line_height = max(self.line_height, height)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.line_height
        self.x, self.line_height = 0, 0


def render_board(board: Board) -> JSON:
    """The Grafana dashboard object (importable as is, no __inputs)."""
    layout = _Layout()
    panels: list[JSON] = []
    for row in board.rows:
        layout.newline()
        panels.append(
            {
                "collapsed": False,
                "gridPos": layout.place(GRID_WIDTH, 1),
                "id": _panel_id(f"row/{row.title}", layout.ids),
                "panels": [],
                "title": row.title,
                "type": "row",
            }
        )
        layout.newline()
        for panel in row.panels:
            if panel.new_line:
                layout.newline()
            panels.append(_render_panel(panel, layout))
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": board.description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": [TAG],
                "targetBlank": False,
                "title": "KPI dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            }
        ],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": {"list": _variables()},
        "time": {"from": board.time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": board.title,
        "uid": board.uid,
        "version": 1,
        "weekStart": "",
    }


def _variables() -> list[JSON]:
    def query_variable(name: str, query: str) -> JSON:
        return {
            "allValue": ".+",
            "current": {},
            "datasource": dict(DATASOURCE),
            "hide": 0,
            "includeAll": True,
            "label": name.title(),
            "multi": True,
            "name": name,
            "options": [],
            "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"},
            "refresh": 2,
            "regex": "",
            "skipUrlSync": False,
            "sort": 1,
            "type": "query",
        }

    return [
        {
            "current": {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        query_variable("job", f"label_values({M.BUILD}, job)"),
        query_variable("instance", f'label_values({M.BUILD}{{job=~"$job"}}, instance)'),
    ]


def _render_panel(panel: Panel, layout: _Layout) -> JSON:
    ref_ids = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    targets = []
    for index, target in enumerate(panel.targets):
        item: JSON = {
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "expr": target.expr,
            "instant": target.instant,
            "legendFormat": target.legend,
            "range": not target.instant,
            "refId": ref_ids[index],
        }
        if target.table:
            item["format"] = "table"
        elif target.heatmap:
            item["format"] = "heatmap"
        targets.append(item)
    defaults: JSON = {
        "color": {
            "mode": "thresholds"
            if panel.kind in ("stat", "gauge", "bargauge")
            else "palette-classic"
        },
        "mappings": [_mapping(panel.mappings)] if panel.mappings else [],
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.steps],
        },
        "unit": panel.unit,
    }
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "axisLabel": panel.axis_label,
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "off" if len(panel.steps) == 1 else "dashed"},
        }
    result: JSON = {
        "datasource": dict(DATASOURCE),
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": layout.place(panel.width, HEIGHT),
        "id": _panel_id(panel.key, layout.ids),
        "options": _options(panel),
        "targets": targets,
        "title": panel.title,
        "type": panel.kind,
    }
    if any(t.table for t in panel.targets):
        result["transformations"] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ]
    return result


def _mapping(mappings: Sequence[tuple[str, str, str]]) -> JSON:
    return {
        "options": {
            value: {"color": color, "index": index, "text": text}
            for index, (value, text, color) in enumerate(mappings)
        },
        "type": "value",
    }


def _options(panel: Panel) -> JSON:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "timeseries":
        return {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if panel.kind == "stat":
        return {
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": reduce,
            "showPercentChange": False,
            "textMode": "auto",
            "wideLayout": True,
        }
    if panel.kind == "gauge":
        return {
            "minVizHeight": 75,
            "minVizWidth": 75,
            "orientation": "auto",
            "reduceOptions": reduce,
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
            "sizing": "auto",
        }
    if panel.kind == "bargauge":
        return {
            "displayMode": "gradient",
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "auto",
            "orientation": "horizontal",
            "reduceOptions": reduce,
            "showUnfilled": True,
            "sizing": "auto",
            "valueMode": "color",
        }
    if panel.kind == "table":
        return {"cellHeight": "sm", "showHeader": True}
    # heatmap of pre-bucketed Prometheus histograms
    return {
        "calculate": panel.targets[0].heatmap is False,
        "cellGap": 1,
        "color": {
            "exponent": 0.5,
            "fill": "dark-orange",
            "mode": "scheme",
            "reverse": False,
            "scale": "exponential",
            "scheme": "Oranges",
            "steps": 64,
        },
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": panel.unit},
    }


# ---------------------------------------------------------------------------- files


def dump(data: object) -> str:
    """Stable JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def provisioning() -> str:
    """Grafana's file provider for the generated dashboards (UI edits are not kept)."""
    return (
        "# Generated by `kpi-exporter generate dashboards`. Copy the dashboard JSON files to\n"
        "# options.path and this file to Grafana's provisioning/dashboards/ directory.\n"
        "apiVersion: 1\n"
        "providers:\n"
        "  - name: kpi-exporter\n"
        "    orgId: 1\n"
        "    folder: KPI exporter\n"
        "    type: file\n"
        "    disableDeletion: false\n"
        "    allowUiUpdates: false\n"
        "    updateIntervalSeconds: 60\n"
        "    options:\n"
        "      path: /var/lib/grafana/dashboards/kpi-exporter\n"
        "      foldersFromFilesStructure: false\n"
    )


def readme(rendered: Sequence[JSON]) -> str:
    """What a user will see, dashboard by dashboard and panel by panel (Markdown)."""
    lines = [
        "# Grafana dashboards",
        "",
        "Generated by `kpi-exporter generate dashboards` from the KPI spec; do not edit by hand",
        "(`make generate` rewrites this folder, and a test fails when it is out of date).",
        "",
        f"- Dashboard JSON schema version: **{SCHEMA_VERSION}** (Grafana 11.6). Every dashboard",
        "  has a `datasource` variable (Prometheus) and `job` / `instance` variables",
        "  (multi-select, *All* = `.+`); every selector filters on them (recording rules, which",
        "  aggregate `instance` away, on `job`). Dashboards are read-only (`editable: false`).",
        "- Import a JSON file through Grafana's UI (Dashboards → New → Import) or HTTP API, push",
        "  them all with `kpi-exporter dashboards push -c SPEC --grafana-url URL`, or provision",
        f"  them from files with [`{PROVISIONING_PATH}`]({PROVISIONING_PATH}).",
        "- Colours: thresholds mirror the KPI's alerts (warning orange, critical red); a KPI's",
        "  target colours its own side green and the other yellow. A free-form alert",
        "  `histogram_quantile(Q, …<kpi>_bucket…) > N` over all of a histogram KPI's series draws",
        "  N on that KPI's quantile panels.",
        "- Records (free-form recording rules) listed in a row show as a timeseries by the labels",
        "  their rule keeps; one that aggregates `job` away cannot follow the `job` variable.",
        "",
    ]
    for dashboard in rendered:
        lines += [
            f"## {dashboard['title']}",
            "",
            f"File `{dashboard['uid']}.json`, uid `{dashboard['uid']}`. {dashboard['description']}",
            "",
        ]
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                if lines[-1]:
                    lines.append("")
                lines += [f"### {panel['title']}", ""]
                continue
            lines.append(
                f"- **{panel['title']}** ({panel['type']}, unit `{_unit_of(panel)}`): "
                f"{panel['description']}"
            )
            for target in panel["targets"]:
                lines.append(f"  - `{target['expr']}`")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _unit_of(panel: JSON) -> str:
    return str(panel["fieldConfig"]["defaults"]["unit"])


def render(spec: Spec) -> dict[str, str]:
    """Every generated file: relative path -> text. The same spec gives the same bytes."""
    rendered = [render_board(board) for board in boards(spec)]
    files = {f"{d['uid']}.json": dump(d) for d in rendered}
    files[PROVISIONING_PATH] = provisioning()
    files["README.md"] = readme(rendered)
    return dict(sorted(files.items()))


def write(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write the files and remove dashboards this generator wrote before that are gone now."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out_dir.glob("*.json")):
        if stale.name not in files and _generated_by_us(stale):
            stale.unlink()
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _generated_by_us(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and TAG in (data.get("tags") or [])
