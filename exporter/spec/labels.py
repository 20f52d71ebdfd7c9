"""The labels each series of a spec carries once scraped or recorded (checks, rules, dashboards)."""

from __future__ import annotations

from exporter.spec.model import Kpi, Ratio, Spec


def source_labels(spec: Spec, kpi: Kpi) -> list[str]:
    """Labels a scraped KPI series carries: job, instance, exporter labels, its databases'
    labels (and the database label of a KPI on several databases), the KPI's labels."""
    constant = set(spec.exporter.labels)
    for database in spec.databases_of(kpi):
        constant |= set(spec.series_labels(kpi, database))
    return ["job", "instance", *sorted(constant), *kpi.labels]


def database_labels(spec: Spec, kpi: Kpi) -> list[str]:
    """The labels that tell a KPI's databases apart (the database label and the labels its
    databases set), which rules aggregate away for the KPI's value over all of them; none for a
    KPI on one database."""
    if not kpi.spans_databases:
        return []
    names = {spec.exporter.database_label}
    for database in spec.databases_of(kpi):
        entry = spec.databases.get(database)
        names |= set(entry.labels) if entry else set()
    return sorted(names)


def ratio_kpis(spec: Spec, ratio: Ratio) -> list[Kpi]:
    """The counter KPIs a ratio reads (good first), by their exposed names."""
    by_name = {spec.metric_name(k): k for k in spec.kpis}
    names = [ratio.good, *[n for n in ratio.total if n != ratio.good]]
    return [by_name[name] for name in names if name in by_name]


def ratio_level(spec: Spec, ratio: Ratio) -> list[str] | None:
    """Labels a ratio keeps: None means `without (instance)` (all its counters share labels)."""
    kpis = ratio_kpis(spec, ratio)
    # counters on several databases carry their database labels: a ratio of such counters
    # is per database; with a counter on one database the database labels are summed away
    label_sets = [(*k.labels, *database_labels(spec, k)) for k in kpis]
    if len(set(map(frozenset, label_sets))) <= 1:
        return None
    common = [name for name in kpis[0].labels if all(name in k.labels for k in kpis)]
    return ["job", *sorted(spec.exporter.labels), *common]


def ratio_labels(spec: Spec, ratio: Ratio) -> list[str]:
    """Labels of a ratio's recorded series."""
    level = ratio_level(spec, ratio)
    if level is not None:
        return level
    kpis = ratio_kpis(spec, ratio)
    return [n for n in source_labels(spec, kpis[0]) if n != "instance"]
