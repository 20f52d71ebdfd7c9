"""A histogram's latency SLO: its events at or under `latency` (the `le` bucket of that bound)
are good, all of them (`_count`) the total, the rest bad."""

from __future__ import annotations

from fractions import Fraction

from exporter.conventions import latency_burn_alert_name, latency_slo_names, le_value, words
from exporter.generation import promql
from exporter.generation.promql import duration, series
from exporter.generation.rules.model import capital, number
from exporter.generation.rules.slo import Sli
from exporter.spec.labels import source_labels
from exporter.spec.model import Kpi, Spec


def latency_sli(spec: Spec, kpi: Kpi) -> Sli:
    """Bad events per second: `_count` minus the bucket at the latency, both summed
    `without (instance)` (the bucket also without `le`), so each label set has its own SLO."""
    slo = kpi.slo
    assert slo is not None
    metric = spec.metric_name(kpi)

    def rates(window: float) -> tuple[str, str]:
        span = duration(window)
        bucket = series(f"{metric}_bucket", spec, {"le": le_value(slo.latency)})
        good = promql.dedup(spec, f"rate({bucket}[{span}])")
        total = promql.dedup(spec, f"rate({series(f'{metric}_count', spec)}[{span}])")
        total_sum = f"sum without (instance) ({total})"
        return f"({total_sum} - sum without (instance, le) ({good}))", total_sum

    name = capital(words(kpi.name.removesuffix("_seconds")))
    return Sli(
        names=latency_slo_names(kpi.name),
        alert=slo.name or latency_burn_alert_name(kpi.name),
        kpi=kpi.name,
        objective=Fraction(str(slo.objective)),
        period=slo.window,
        subject=f"{name} latency",
        what=f"{name} took longer than {number(slo.latency)}s for {{share}} of events over the "
        "last {window}",
        labels=[n for n in source_labels(spec, kpi) if n != "instance"],
        rates=rates,
        min_events=slo.min_events,
    )
