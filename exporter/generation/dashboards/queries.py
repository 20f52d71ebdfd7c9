"""PromQL text of the panels: the dashboard's $job/$instance selector, rates, quantiles,
legends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from exporter.generation.promql import duration, histogram_quantile, kpi_value, quote
from exporter.spec.labels import ratio_labels
from exporter.spec.model import Kpi, Ratio, Spec


def selector(
    metric: str,
    matchers: Iterable[tuple[str, str]] = (),
    instance: bool = True,
    job: bool = True,
    database: str | None = None,
) -> str:
    """A vector selector with the dashboard's $job/$instance matchers and exact-match extras;
    `database` names the label the $database variable selects (KPIs on several databases)."""
    parts = ['job=~"$job"'] if job else []
    if instance:
        parts.append('instance=~"$instance"')
    if database is not None:
        parts.append(f'{database}=~"$database"')
    parts.extend(f"{name}={quote(value)}" for name, value in sorted(matchers))
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def database_matcher(spec: Spec, kpi: Kpi) -> str | None:
    """The label a KPI's panels filter by $database: its database label when it spans
    databases, else none."""
    return spec.exporter.database_label if kpi.spans_databases else None


def ratio_database_matcher(spec: Spec, ratio: Ratio) -> str | None:
    """The label a ratio's panels filter by $database: the database label when its recorded
    series keep it (all its counters span databases: one ratio per database), else none."""
    label = spec.exporter.database_label
    return label if label in ratio_labels(spec, ratio) else None


def by_clause(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)}) " if labels else ""


def legend_of(labels: Sequence[str], fallback: str) -> str:
    return " ".join("{{" + label + "}}" for label in labels) if labels else fallback


def rate(metric_selector: str) -> str:
    return f"rate({metric_selector}[$__rate_interval])"


def value(spec: Spec, item: Kpi | Ratio) -> str:
    """The KPI's or ratio's one value (target panels), over the dashboard's $job/$instance
    and, for a KPI on several databases, $database, as its other panels. A ratio is read over
    its own window, the one its alerts judge, so that the gauge turns colour when its alert
    does."""
    if isinstance(item, Ratio):
        matchers = selector("", database=ratio_database_matcher(spec, item))
        return kpi_value(spec, item, matchers, duration(item.window))
    matchers = selector("", database=database_matcher(spec, item))
    return kpi_value(spec, item, matchers, "$__rate_interval")


def increase_over_range(metric_selector: str) -> str:
    return f"increase({metric_selector}[$__range])"


def quantile(q: float, bucket_selector: str, labels: Sequence[str]) -> str:
    return histogram_quantile(q, rate(bucket_selector), labels)


def recorded_legend(spec: Spec, ratio: Ratio) -> str:
    """Legend for a ratio's recorded series: the labels the rules keep, beyond job and the
    exporter's constant labels."""
    kept = [
        label
        for label in ratio_labels(spec, ratio)
        if label != "job" and label not in spec.exporter.labels
    ]
    return legend_of(kept, "{{job}}")
