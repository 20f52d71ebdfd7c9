"""The exporter's own health alerts: target absent or down, KPI failing or stale, database down."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.conventions import SelfMetric
from exporter.generation import promql
from exporter.generation.promql import duration, quote, series
from exporter.generation.rules.model import (
    AlertRule,
    alert_rule,
    confirm_for,
    number,
    poll_confirm_for,
)
from exporter.spec.model import Kpi, Spec


def _by_confirm(spec: Spec) -> list[tuple[tuple[float, str], list[Kpi]]]:
    """KPIs by (wait before failing, database): each rule names its database as a label, so
    Alertmanager can silence a database's failing KPIs while that database is down. KPIs on
    several databases share a group with database "": their series carry the label already
    (the self-metrics are labelled by database), so their alerts fire per database."""
    groups: dict[tuple[float, str], list[Kpi]] = {}
    for kpi in spec.kpis:
        database = "" if kpi.spans_databases else spec.databases_of(kpi)[0]
        groups.setdefault((poll_confirm_for(spec, kpi), database), []).append(kpi)
    return sorted(groups.items())


def _database_label(database: str) -> dict[str, str]:
    return {"database": database} if database else {}


def _kpi_series(name: str, spec: Spec, kpis: Sequence[Kpi], split: bool) -> str:
    text = series(name, spec)
    if not split:
        return text
    alternatives = "|".join(sorted(k.name for k in kpis))
    return text[:-1] + f", kpi=~{quote(alternatives)}" + "}"


def health_rules(spec: Spec) -> list[AlertRule]:
    """Absent target, target down, KPI failing or stale, database down, reload failed (long
    only by its alert_rule literals, one per alert)."""
    sel = promql.selector(spec)
    confirm = confirm_for(spec)
    dedup = promql.dedup
    # with replicas, an alert speaks for the job: it fires only when every replica agrees
    where = "{{ $labels.instance }}" if spec.exporter.replicas is None else "every replica"
    job_eq = [m for m in promql.parse_matchers(spec.exporter.rule_selector()) if m.name == "job"]
    absent_labels = " of job {{ $labels.job }}" if job_eq and job_eq[0].op == "=" else ""
    rules = [
        alert_rule(
            spec,
            "KpiExporterAbsent",
            f"absent(up{sel})",
            max(300.0, 2 * spec.exporter.scrape_interval),
            {"severity": "critical"},
            "The kpi-exporter target has disappeared from Prometheus.",
            f"Prometheus has no kpi-exporter target{absent_labels} matching {sel} to scrape.",
        ),
        alert_rule(
            spec,
            "KpiExporterDown",
            f"{dedup(spec, f'up{sel}')} == 0",
            confirm,
            {"severity": "critical"},
            "A kpi-exporter target is down.",
            f"Prometheus cannot scrape kpi-exporter {where} of job {{{{ $labels.job }}}}.",
        ),
    ]
    periods = _by_confirm(spec)
    split = len(periods) > 1
    for (wait, database), kpis in periods:
        limit = 3 * max(k.period for k in kpis)
        rules.append(
            alert_rule(
                spec,
                "KpiExporterKpiFailing",
                dedup(spec, _kpi_series(SelfMetric.KPI_UP, spec, kpis, split)) + " == 0",
                wait,
                {
                    "severity": "warning",
                    "poll_interval": duration(min(k.period for k in kpis)),
                    **_database_label(database),
                },
                "A KPI query keeps failing.",
                f"KPI {{{{ $labels.kpi }}}} on {where} has failed its polls for "
                f"{duration(wait)}; {SelfMetric.QUERY_ERRORS} says why.",
            )
        )
        rules.append(
            alert_rule(
                spec,
                "KpiExporterKpiStale",
                "time() - "
                + dedup(
                    spec,
                    _kpi_series(SelfMetric.LAST_SUCCESS, spec, kpis, split),
                )
                + f" > {number(limit)}",
                confirm,
                {
                    "severity": "warning",
                    "poll_interval": duration(max(k.period for k in kpis)),
                    **_database_label(database),
                },
                "A KPI's data is stale.",
                f"KPI {{{{ $labels.kpi }}}} on {where} last succeeded "
                "{{ $value | humanizeDuration }} ago, more than three poll intervals "
                f"({duration(limit)}).",
            )
        )
    rules.append(
        alert_rule(
            spec,
            "KpiExporterDatabaseDown",
            f"{dedup(spec, f'{SelfMetric.DATABASE_UP}{sel}')} == 0",
            confirm,
            {"severity": "critical"},
            "A database polled by kpi-exporter is unreachable.",
            f"Database {{{{ $labels.database }}}} is down for kpi-exporter {where}.",
        )
    )
    rules.append(
        alert_rule(
            spec,
            "KpiExporterReloadFailed",
            f"{dedup(spec, f'{SelfMetric.RELOAD_OK}{sel}', 'min')} == 0",
            confirm,
            {"severity": "warning"},
            "The last kpi-exporter configuration reload failed.",
            f"kpi-exporter {where.replace('every', 'a')} could not reload its spec; "
            "it keeps running the previous one.",
        )
    )
    return rules
