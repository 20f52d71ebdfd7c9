"""The panels of a ratio: its value and its recorded trend (its SLO's panels: slos.py)."""

from __future__ import annotations

from exporter.conventions import format_duration
from exporter.generation.dashboards.kpis import (
    as_kind,
    display_title,
    headline_kind,
    headline_width,
    help_or,
    target_panel,
)
from exporter.generation.dashboards.model import GRID_WIDTH, Panel, Target
from exporter.generation.dashboards.queries import (
    ratio_database_matcher,
    recorded_legend,
    selector,
    value,
)
from exporter.generation.dashboards.thresholds import bounds_for, describe_bounds, steps_for
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
    database = ratio_database_matcher(spec, ratio)
    recorded = selector(ratio.record_name, instance=False, database=database)
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
