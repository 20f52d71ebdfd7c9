"""The panels of a ratio and of its SLO (objective, SLI, budget left, burn rate), read from
the recording rules the rules generator writes (generation/rules/slo.py)."""

from __future__ import annotations

from exporter.conventions import (
    BURN_WINDOWS,
    budget_record_name,
    error_ratio_record_name,
    format_duration,
)
from exporter.generation.dashboards.kpis import (
    as_kind,
    display_title,
    headline_kind,
    headline_width,
    help_or,
    target_panel,
)
from exporter.generation.dashboards.model import GRID_WIDTH, OK, Panel, Target
from exporter.generation.dashboards.queries import recorded_legend, selector, value
from exporter.generation.dashboards.thresholds import Bound, bounds_for, describe_bounds, steps_for
from exporter.generation.rules.slo import error_budget
from exporter.spec.model import Ratio, Spec


def ratio_panels(spec: Spec, ratio: Ratio) -> tuple[Panel, ...]:
    """A ratio: a gauge (0-1) of the overall value and the recorded ratio's trend by label."""
    title = display_title(ratio.name)
    bounds = bounds_for(ratio.alerts, ratio.target, "value")
    steps = steps_for(bounds)
    window = format_duration(ratio.window)
    total = " + ".join(ratio.total)
    help_text = help_or(ratio.help, f"{ratio.good} / ({total}).")
    overall = value(spec, ratio)
    recorded = selector(ratio.record_name, instance=False)
    legend = recorded_legend(spec, ratio)
    kind = ratio.panel or "gauge"
    headline = headline_kind(kind)
    panels: list[Panel] = []
    if headline is not None:
        panels.append(
            Panel(
                key=f"ratio/{ratio.name}/value",
                kind=headline,
                title=title,
                description=f"{help_text} {ratio.good} / ({total}) over all series, computed "
                "from the counters." + describe_bounds(bounds, False),
                targets=(as_kind(Target(overall, "ratio"), headline),),
                unit="percentunit",
                width=headline_width(headline),
                steps=steps,
                minimum=0.0,
                maximum=1.0,
            )
        )
    target = target_panel(ratio, overall, "percentunit", (0.0, 1.0), panels)
    panels.append(
        Panel(
            key=f"ratio/{ratio.name}/trend",
            kind="timeseries",
            title=f"{title} over time",
            description=f"{help_text} The recording rule {ratio.record_name} (rates over "
            f"{window})." + describe_bounds(bounds, False),
            targets=(Target(recorded, legend),),
            unit="percentunit",
            width=GRID_WIDTH - sum(p.width for p in (*panels, *target)),
            steps=steps,
            minimum=0.0,
            maximum=1.0,
        )
    )
    return (*panels, *target)


def slo_panels(spec: Spec, ratio: Ratio) -> tuple[Panel, ...]:
    """Objective, SLI over the SLO period, error budget remaining and burn rate of a ratio,
    from the recording rules the rules generator writes (generation/rules/slo.py).
    Long only by its Panel literals, one per panel shown."""
    slo = ratio.slo
    assert slo is not None
    objective = slo.objective / 100
    period = format_duration(slo.period)
    budget = error_budget(slo)
    legend = recorded_legend(spec, ratio)
    title = display_title(ratio.name)
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
