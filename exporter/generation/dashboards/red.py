"""The RED row a dashboard opens with: request rate, error rate and p95 latency of the
service its KPIs describe, as stats with sparklines in the first screen.

The rule, read from the KPIs a dashboard lists:
- Duration: the first histogram KPI in a unit of time (seconds by unit or by name). Without
  one there is no RED row.
- Rate: the counter KPI, not an error counter, whose name shares the most leading words with
  the histogram's (`http_requests_total` for `http_request_duration_seconds`); without one,
  the histogram's own `_count`.
- Errors: a ratio over the rate counter (one minus good / total, over the ratio's window,
  the one its alerts judge); else the error counter (its name has error, errors, fail,
  failed, failure or failures) sharing the most leading words with the rate's; else none.
A dashboard's `red` names the duration (and the rate or errors) itself, or is false: no row."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.generation.dashboards.kpis import display_title
from exporter.generation.dashboards.model import GRID_WIDTH, RED_HEIGHT, Panel, Row, Target
from exporter.generation.dashboards.queries import (
    database_matcher,
    quantile,
    rate,
    selector,
    value,
)
from exporter.generation.dashboards.thresholds import (
    Bound,
    bounds_for,
    describe_bounds,
    kpi_unit,
    quantile_alert_bounds,
    rate_unit,
    steps_for,
)
from exporter.spec.model import Kpi, Ratio, RedRow, Spec

ERROR_WORDS = frozenset(["error", "errors", "fail", "failed", "failure", "failures"])
TIME_UNITS = frozenset(["s", "ms", "µs", "ns"])
RED_TITLE = "Rate, errors, duration"


@dataclass(frozen=True)
class Red:
    """The KPIs of a RED row: rate (a counter, or the duration histogram's count), errors
    (a ratio, an error counter or none) and duration (a histogram in a unit of time)."""

    rate: Kpi
    errors: Kpi | Ratio | None
    duration: Kpi


def _words(name: str) -> list[str]:
    return name.removesuffix("_total").split("_")


def _shared(a: str, b: str) -> int:
    """How many leading words two names share (`http_requests`, `http_request_…`: 1)."""
    count = 0
    for x, y in zip(_words(a), _words(b), strict=False):
        if x.rstrip("s") != y.rstrip("s"):
            break
        count += 1
    return count


def is_error_counter(kpi: Kpi) -> bool:
    return kpi.type == "counter" and bool(ERROR_WORDS & set(_words(kpi.name)))


def _closest(kpis: Sequence[Kpi], name: str) -> Kpi | None:
    """The KPI sharing the most leading words with `name`; the first listed on a tie."""
    return max(kpis, key=lambda k: _shared(k.name, name), default=None)


def find_red(spec: Spec, names: Sequence[str], hint: RedRow | None = None) -> Red | None:
    """The RED KPIs among the listed names, by the rule in this module's docstring; a
    dashboard's `red` names some or all of them instead."""
    kpis = [spec.kpi(n) for n in names if n in {k.name for k in spec.kpis}]
    durations = [k for k in kpis if k.type == "histogram" and kpi_unit(k) in TIME_UNITS]
    if hint is not None:
        durations = [spec.kpi(hint.duration)]
    if not durations:
        return None
    duration = durations[0]
    counters = [k for k in kpis if k.type == "counter" and not is_error_counter(k)]
    requests = _closest(counters, duration.name) or duration
    if hint is not None and hint.rate is not None:
        requests = spec.kpi(hint.rate)
    errors: Kpi | Ratio | None = None
    if hint is not None and hint.errors is not None:
        named = [r for r in spec.ratios if r.name == hint.errors]
        return Red(requests, named[0] if named else spec.kpi(hint.errors), duration)
    if requests.type == "counter":
        metric = spec.metric_name(requests)
        listed = [r for r in spec.ratios if r.name in names]
        over = [r for r in (*listed, *spec.ratios) if metric in r.total]
        errors = over[0] if over else None
    if errors is None:
        errors = _closest([k for k in kpis if is_error_counter(k)], requests.name)
    return Red(requests, errors, duration)


def red_row(spec: Spec, red: Red) -> Row:
    """The RED row: one stat with a sparkline per signal, side by side, the full width."""
    panels = [_rate_panel(spec, red.rate, red.duration)]
    if red.errors is not None:
        panels.append(_errors_panel(spec, red.errors))
    panels.append(_duration_panel(spec, red.duration))
    width = GRID_WIDTH // len(panels)
    return Row(RED_TITLE, tuple(_sized(p, width) for p in panels))


def _sized(panel: Panel, width: int) -> Panel:
    return dataclasses.replace(panel, width=width, height=RED_HEIGHT)


def _summed_rate(spec: Spec, kpi: Kpi, suffix: str) -> str:
    """The per-second rate of a counter (or a histogram's `_count`) over all its series, on
    the databases $database selects when the KPI spans several."""
    metric = spec.metric_name(kpi) + suffix
    return f"sum({rate(selector(metric, database=database_matcher(spec, kpi)))})"


def _rate_panel(spec: Spec, kpi: Kpi, duration: Kpi) -> Panel:
    if kpi.type == "counter":
        expr = _summed_rate(spec, kpi, "")
        bounds = bounds_for([a for a in kpi.alerts if not a.matchers], kpi.target, "rate")
        unit, what = rate_unit(kpi), f"{spec.metric_name(kpi)} per second"
    else:
        expr = _summed_rate(spec, kpi, "_count")
        bounds, unit = [], "ops"
        what = f"observations of {spec.metric_name(kpi)} per second"
    return Panel(
        key=f"red/rate/{kpi.name}",
        kind="stat",
        title=f"Request rate · {display_title(kpi.name)}"
        + ("" if kpi.type == "counter" else " (count)"),
        description=f"Requests: {what}, over all series." + describe_bounds(bounds, True),
        targets=(Target(expr, "rate"),),
        unit=unit,
        steps=steps_for(bounds),
    )


def _errors_panel(spec: Spec, errors: Kpi | Ratio) -> Panel:
    title = (
        f"Error {'ratio' if isinstance(errors, Ratio) else 'rate'} · {display_title(errors.name)}"
    )
    if isinstance(errors, Ratio):
        # the ratio's bounds, turned over: below 0.95 good is above 0.05 failing
        bounds = [
            Bound(1 - b.value, not b.above, b.color)
            for b in bounds_for(errors.alerts, errors.target, "value")
        ]
        return Panel(
            key=f"red/errors/{errors.name}",
            kind="stat",
            title=title,
            description=f"Error ratio: 1 - {errors.good} / ({' + '.join(errors.total)}) over "
            "the ratio's window, the one its alerts judge." + describe_bounds(bounds, False),
            targets=(Target(f"1 - ({value(spec, errors)})", "errors"),),
            unit="percentunit",
            steps=steps_for(bounds),
            minimum=0.0,
            maximum=1.0,
        )
    bounds = bounds_for([a for a in errors.alerts if not a.matchers], errors.target, "rate")
    return Panel(
        key=f"red/errors/{errors.name}",
        kind="stat",
        title=title,
        description=f"Errors: {spec.metric_name(errors)} per second, over all series."
        + describe_bounds(bounds, True),
        targets=(Target(_summed_rate(spec, errors, ""), "errors"),),
        unit=rate_unit(errors),
        steps=steps_for(bounds),
    )


def _duration_panel(spec: Spec, kpi: Kpi) -> Panel:
    bucket = selector(f"{spec.metric_name(kpi)}_bucket", database=database_matcher(spec, kpi))
    bounds = [
        *bounds_for(kpi.alerts, kpi.target, "value"),
        *quantile_alert_bounds(spec, kpi).get(0.95, []),
    ]
    return Panel(
        key=f"red/duration/{kpi.name}",
        kind="stat",
        title=f"p95 latency · {display_title(kpi.name)}",
        description=f"Duration: the 95th percentile of {spec.metric_name(kpi)} over all "
        "series." + describe_bounds(bounds, False),
        targets=(Target(quantile(0.95, bucket, ()), "p95"),),
        unit=kpi_unit(kpi),
        steps=steps_for(bounds),
    )
