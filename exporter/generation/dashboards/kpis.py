"""The panels of one KPI (a headline, its trend, a target gauge; per gauge, counter and
histogram), and the titles, headlines and target panel the ratio panels share."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.generation.dashboards.model import GRID_WIDTH, QUANTILES, TARGET_WIDTH, Panel, Target
from exporter.generation.dashboards.queries import (
    by_clause,
    database_matcher,
    increase_over_range,
    legend_of,
    quantile,
    rate,
    selector,
    value,
)
from exporter.generation.dashboards.thresholds import (
    bounds_for,
    describe_bounds,
    kpi_unit,
    quantile_alert_bounds,
    rate_unit,
    steps_for,
    unit_words,
)
from exporter.spec.model import Kpi, PanelKind, Ratio, Spec, Threshold


def help_or(text: str, fallback: str) -> str:
    text = " ".join(text.split())
    if not text:
        return fallback
    return text if text.endswith(".") else text + "."


_ACRONYMS = {"http": "HTTP", "api": "API", "usd": "USD", "eur": "EUR", "sql": "SQL", "id": "ID"}
_UNIT_SUFFIXES = ("_total", "_seconds", "_bytes", "_ratio")


def display_title(name: str) -> str:
    """`http_request_duration_seconds` -> `HTTP request duration` (units live on the axis)."""
    for suffix in _UNIT_SUFFIXES:
        name = name.removesuffix(suffix)
    words = [_ACRONYMS.get(word, word) for word in name.split("_") if word]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def headline_kind(kind: PanelKind) -> str | None:
    """The panel kind for a KPI's headline value; None when it asked for a trend or a heatmap."""
    return None if kind in ("timeseries", "heatmap") else kind


def headline_width(kind: str) -> int:
    return 12 if kind in ("bargauge", "table") else 6


def as_kind(target: Target, kind: str) -> Target:
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
    database = database_matcher(spec, kpi)
    # a gauge is a state read from the database: replicas report the same value, so max;
    # on several databases each one's max, summed (the business value)
    expr = f"max{by_clause(kpi.labels)}({selector(metric, database=database)})"
    if database is not None:
        each = f"max{by_clause([*kpi.labels, database])}({selector(metric, database=database)})"
        expr = f"sum{by_clause(kpi.labels)}({each})"
    legend = legend_of(kpi.labels, display_title(kpi.name))
    unit = kpi_unit(kpi)
    bounds = bounds_for(kpi.alerts, kpi.target, "value")
    steps = steps_for(bounds)
    description = help_or(kpi.help, f"Gauge {metric}.") + describe_bounds(bounds, False)
    limits = (0.0, 1.0) if unit == "percentunit" else (None, None)
    kind = kpi.panel or "stat"
    headline = headline_kind(kind)
    panels: list[Panel] = []
    if headline is not None:
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/value",
                kind=headline,
                title=display_title(kpi.name),
                description=description,
                targets=(as_kind(Target(expr, legend), headline),),
                unit=unit,
                width=headline_width(headline),
                steps=steps,
                minimum=limits[0],
                maximum=limits[1],
            )
        )
    target = target_panel(kpi, value(spec, kpi), unit, limits, panels)
    panels.append(
        Panel(
            key=f"kpi/{kpi.name}/trend",
            kind="heatmap" if kind == "heatmap" else "timeseries",
            title=f"{display_title(kpi.name)} over time",
            description=description,
            targets=(Target(expr, legend),),
            unit=unit,
            width=GRID_WIDTH - sum(p.width for p in (*panels, *target)),
            steps=steps,
            minimum=limits[0],
            maximum=limits[1],
            axis_label=unit_words(kpi),
        )
    )
    return (*panels, *target)


def _counter_panels(spec: Spec, kpi: Kpi) -> tuple[Panel, ...]:
    """Increase over the dashboard's range (stat or bars) and the per-second rate by label.
    Long only by its Panel literals, one per panel shown."""
    metric = spec.metric_name(kpi)
    database = database_matcher(spec, kpi)
    labels = kpi.labels
    unit = kpi_unit(kpi)
    per_second = rate_unit(kpi)
    help_text = help_or(kpi.help, f"Counter {metric}.")
    title = display_title(kpi.name)
    kind = kpi.panel or "stat"
    headline = headline_kind(kind)
    panels: list[Panel] = []
    if headline is not None:
        # one number per series over the whole range: an instant query, not a range of them
        selected = selector(metric, database=database)
        total = f"sum({increase_over_range(selected)})"
        targets = [Target(total, "total", instant=True)]
        if labels and headline in ("bargauge", "table"):
            by_labels = f"sum{by_clause(labels)}({increase_over_range(selected)})"
            targets.append(Target(by_labels, legend_of(labels, title), instant=True))
        panels.append(
            Panel(
                key=f"kpi/{kpi.name}/increase",
                kind=headline,
                title=f"{title} (range total)",
                description=f"{help_text} Increase over the dashboard's time range"
                + (", in total and by " + ", ".join(labels) if len(targets) > 1 else "")
                + ".",
                targets=tuple(as_kind(t, headline) for t in targets),
                unit=unit,
                width=headline_width(headline),
            )
        )
    # one rate view over all series, and one per set of matchers an alert narrows them to
    views: dict[tuple[tuple[str, str], ...], list[Threshold]] = {(): []}
    for alert in kpi.alerts:
        views.setdefault(tuple(sorted(alert.matchers.items())), []).append(alert)
    constant = sorted(spec.exporter.labels)
    target = target_panel(kpi, value(spec, kpi), per_second, (None, None), panels)
    for matchers, alerts in views.items():
        bounds = bounds_for(alerts, None if matchers else kpi.target, "rate")
        narrowed = rate(selector(metric, matchers, database=database))
        targets = [Target(f"sum({narrowed})", "total")]
        if constant:
            targets.append(Target(f"sum{by_clause(constant)}({narrowed})", legend_of(constant, "")))
        if labels:
            targets.append(Target(f"sum{by_clause(labels)}({narrowed})", legend_of(labels, title)))
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
                + describe_bounds(bounds, True),
                targets=tuple(targets),
                unit=per_second,
                width=GRID_WIDTH - used - sum(p.width for p in target) if not matchers else 12,
                steps=steps_for(bounds),
                axis_label=f"{unit_words(kpi) or 'events'}/s",
            )
        )
        if not matchers:
            panels.extend(target)
    return tuple(panels)


def _histogram_panels(spec: Spec, kpi: Kpi) -> tuple[Panel, ...]:
    """p50/p95/p99 over all series, a heatmap of the buckets, and p95 by label.
    Long only by its Panel literals, one per panel shown."""
    metric = spec.metric_name(kpi)
    bucket = selector(f"{metric}_bucket", database=database_matcher(spec, kpi))
    labels = kpi.labels
    unit = kpi_unit(kpi)
    title = display_title(kpi.name)
    help_text = help_or(kpi.help, f"Histogram {metric}.")
    bounds = bounds_for(kpi.alerts, kpi.target, "value")
    alerts = quantile_alert_bounds(spec, kpi)
    p95_bounds = [*bounds, *alerts.get(0.95, [])]
    steps = steps_for(p95_bounds)
    every = [*bounds, *(b for q in QUANTILES for b in alerts.get(q, []))]
    by_label = Target(quantile(0.95, bucket, labels), legend_of(labels, "p95"))
    kind = kpi.panel or "timeseries"
    headline = headline_kind(kind)
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
                + describe_bounds(p95_bounds, False),
                targets=(as_kind(by_label, headline),),
                unit=unit,
                width=headline_width(headline),
                steps=steps,
            )
        )
    target = target_panel(kpi, value(spec, kpi), unit, (None, None), panels)
    # the target sits beside the p95 by label, or else beside the quantiles and heatmap
    free = GRID_WIDTH - sum(p.width for p in (*panels, *(() if labels else target)))
    panels.append(
        Panel(
            key=f"kpi/{kpi.name}/quantiles",
            kind="timeseries",
            title=f"{title} p50 / p95 / p99",
            description=f"{help_text} Quantiles over all series." + describe_bounds(every, False),
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
                + describe_bounds(p95_bounds, False),
                targets=(by_label,),
                unit=unit,
                width=GRID_WIDTH - sum(p.width for p in target),
                steps=steps,
            )
        )
    return (*panels, *target)


def shows_value(panels: Sequence[Panel], expr: str) -> bool:
    """Whether a headline (stat or gauge) of `panels` already shows exactly this value."""
    return any(
        p.kind in ("stat", "gauge") and [t.expr for t in p.targets] == [expr] for p in panels
    )


def target_panel(
    item: Kpi | Ratio,
    expr: str,
    unit: str,
    limits: tuple[float | None, float | None],
    shown: Sequence[Panel] = (),
) -> tuple[Panel, ...]:
    """A stat with a sparkline: green on the target's side, yellow off it; none when a
    headline of `shown` already shows the value (its colours include the target's)."""
    if item.target is None or shows_value(shown, expr):
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
            title=f"{display_title(item.name)} vs target",
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
