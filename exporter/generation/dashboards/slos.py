"""The panels of an SLO, any kind (ratio, latency, freshness): objective, SLI over the SLO
period, error budget remaining and burn rate, read from the recording rules the rules
generator writes for it (generation/rules/slo.py)."""

from __future__ import annotations

from exporter.conventions import BURN_WINDOWS, format_duration
from exporter.generation.dashboards.kpis import display_title
from exporter.generation.dashboards.model import OK, Panel, Target
from exporter.generation.dashboards.queries import (
    database_matcher,
    legend_of,
    ratio_database_matcher,
    recorded_legend,
    selector,
)
from exporter.generation.dashboards.thresholds import Bound, steps_for
from exporter.generation.promql import quote
from exporter.generation.rules.freshness import freshness_level, freshness_sli
from exporter.generation.rules.latency import latency_sli
from exporter.generation.rules.model import number
from exporter.generation.rules.ratios import ratio_sli
from exporter.generation.rules.slo import Sli
from exporter.spec.model import Kpi, Ratio, Spec


def sli_panels(
    key: str, title: str, legend: str, good: str, sli: Sli, database: str | None = None
) -> tuple[Panel, ...]:
    """Four panels of one SLO; `good` says what the SLI counts ("good events / all events");
    `database` names the label its records keep per database, which $database then filters.
    Long only by its Panel literals, one per panel shown."""
    objective = float(sli.objective)
    period = format_duration(sli.period)
    budget = sli.budget
    names = sli.names

    def recorded(name: str) -> str:
        return selector(name, instance=False, database=database)

    error_ratio = recorded(names.error_ratio(sli.period))
    critical = [w for w in BURN_WINDOWS if w.severity == "critical"]
    warning = [w for w in BURN_WINDOWS if w.severity != "critical"]
    page = min(float(w.factor(sli.period)) for w in critical)
    ticket = min(float(w.factor(sli.period)) for w in warning)
    burns = [
        Target(
            f"{recorded(names.error_ratio(w.long))} / {budget}",
            f"{legend} {format_duration(w.long)}",
        )
        for w in critical
    ]
    return (
        Panel(
            key=f"slo/{key}/objective",
            kind="stat",
            title=f"{title} SLO objective",
            description=f"The objective: {number(sli.objective * 100)}% "
            f"{'good events' if sli.rates else 'of the time good'} over {period}.",
            # the SLO's name as a label: another SLO's objective of the same value is not
            # the same query, so the board's duplicate rule (layout.shown_once) keeps both
            targets=(
                Target(
                    f'label_replace(vector({objective:g}), "slo", {quote(key)}, "", "")',
                    "objective",
                ),
            ),
            unit="percentunit",
            width=6,
        ),
        Panel(
            key=f"slo/{key}/sli",
            kind="stat",
            title=f"{title} SLI ({period})",
            description=f"{good} over the SLO period ({period}): 1 minus the "
            f"recorded {names.error_ratio(sli.period)}. Red below the objective.",
            targets=(Target(f"1 - {error_ratio}", legend),),
            unit="percentunit",
            width=6,
            steps=steps_for([Bound(objective, False, "red")]),
            minimum=0.0,
            maximum=1.0,
        ),
        Panel(
            key=f"slo/{key}/budget",
            kind="stat",
            title=f"{title} error budget remaining",
            description=f"The recorded {names.budget}: "
            "1 - (1 - SLI) / (1 - objective) "
            f"over {period}, the share of the error budget not yet spent; 0 or less when it is "
            "exhausted.",
            targets=(Target(recorded(names.budget), legend),),
            unit="percentunit",
            width=6,
            steps=((None, "red"), (0.0, "orange"), (0.25, OK)),
        ),
        Panel(
            key=f"slo/{key}/burn",
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


def ratio_slo_panels(spec: Spec, ratio: Ratio) -> tuple[Panel, ...]:
    title, legend = display_title(ratio.name), recorded_legend(spec, ratio)
    good = "Good events / all events"
    sli = ratio_sli(spec, ratio)
    return sli_panels(ratio.name, title, legend, good, sli, ratio_database_matcher(spec, ratio))


def kpi_slo_rows(spec: Spec, kpi: Kpi) -> list[tuple[str, tuple[Panel, ...]]]:
    """(row title, panels) for a KPI's latency SLO and its freshness SLO."""
    rows = []
    title = display_title(kpi.name)
    if kpi.slo is not None:
        legend = legend_of(kpi.labels, "{{job}}")
        good = f"Events within {number(kpi.slo.latency)}s / all events"
        name = f"{title} latency"
        sli = latency_sli(spec, kpi)
        database = database_matcher(spec, kpi)
        rows.append((name, sli_panels(f"{kpi.name}-latency", name, legend, good, sli, database)))
    if kpi.freshness is not None:
        shown = [n for n in freshness_level(spec) if n not in ("job", "kpi")]
        legend = legend_of(shown, "{{kpi}}")
        age = format_duration(kpi.freshness.max_age)
        good = f"The share of time the data was younger than {age}"
        name = f"{title} freshness"
        sli = freshness_sli(spec, kpi)
        # the self-metrics' label, whatever the KPI series call theirs
        database = "database" if kpi.spans_databases else None
        rows.append((name, sli_panels(f"{kpi.name}-freshness", name, legend, good, sli, database)))
    return rows
