"""All rules of a spec in groups, in a stable order (monitoring-mixin style)."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.generation.rules.free import free_alerts, free_records
from exporter.generation.rules.freshness import fresh_record, freshness_sli
from exporter.generation.rules.health import health_rules
from exporter.generation.rules.kpis import BASELINE_INTERVAL, baseline_records, kpi_alerts
from exporter.generation.rules.latency import latency_sli
from exporter.generation.rules.model import AlertRule, Rule, RuleGroup, RuleSet
from exporter.generation.rules.ratios import ratio_record, ratio_sli, ratio_threshold_alert
from exporter.generation.rules.slo import SAMPLE_INTERVAL, Sli, burn_alerts, slo_records
from exporter.spec.model import Kpi, Ratio, Spec

MAX_GROUP_RULES = 20
ALERT_INTERVAL = 30.0  # the brief: alert groups are evaluated every 30 s
HEALTH_GROUP = "kpi-exporter-health"
CUSTOM_GROUP = "kpi-exporter-custom-alerts"
CUSTOM_RECORDS_GROUP = "kpi-exporter-custom.rules"


def _slo_groups(name: str, rules: list[Rule], sli: Sli | None) -> list[RuleGroup]:
    """Group `<name>.rules` (evaluated with the alerts): `rules` and, with an SLO, its error
    ratios over short windows; and the SLO's sampled group `<name>-slo.rules`."""
    if sli is None:
        return _groups(f"{name}.rules", rules, ALERT_INTERVAL)
    fast, sampled = slo_records(sli)
    return _groups(f"{name}.rules", [*rules, *fast], ALERT_INTERVAL) + _groups(
        f"{name}-slo.rules", sampled, SAMPLE_INTERVAL
    )


def kpi_slis(spec: Spec, kpi: Kpi) -> list[Sli]:
    """The SLOs on a KPI: its latency SLO (histograms), its freshness SLO."""
    slis = []
    if kpi.slo is not None:
        slis.append(latency_sli(spec, kpi))
    if kpi.freshness is not None:
        slis.append(freshness_sli(spec, kpi))
    return slis


def kpi_slo_records(spec: Spec, kpi: Kpi) -> list[RuleGroup]:
    groups = []
    if kpi.slo is not None:
        groups += _slo_groups(f"kpi-{kpi.name}-latency", [], latency_sli(spec, kpi))
    if kpi.freshness is not None:
        fresh: list[Rule] = [fresh_record(spec, kpi)]
        groups += _slo_groups(f"kpi-{kpi.name}-freshness", fresh, freshness_sli(spec, kpi))
    return groups


def ratio_records(spec: Spec, ratio: Ratio) -> list[RuleGroup]:
    """The ratio's group (evaluated with the alerts) and, with an SLO, its sampled group."""
    sli = ratio_sli(spec, ratio) if ratio.slo is not None else None
    return _slo_groups(f"ratio-{ratio.name}", list(ratio_record(spec, ratio)), sli)


def ratio_alerts(spec: Spec, ratio: Ratio) -> list[AlertRule]:
    rules = [ratio_threshold_alert(spec, ratio, t) for t in ratio.alerts]
    if ratio.slo is not None:
        rules.extend(burn_alerts(spec, ratio_sli(spec, ratio)))
    return rules


def _groups(name: str, rules: Sequence[Rule], interval: float | None = None) -> list[RuleGroup]:
    """One group, or numbered groups of at most MAX_GROUP_RULES rules."""
    if not rules:
        return []
    if len(rules) <= MAX_GROUP_RULES:
        return [RuleGroup(name, tuple(rules), interval)]
    chunks = range(0, len(rules), MAX_GROUP_RULES)
    return [
        RuleGroup(f"{name}-{n}", tuple(rules[start : start + MAX_GROUP_RULES]), interval)
        for n, start in enumerate(chunks, 1)
    ]


def kpi_group_name(kpi: Kpi) -> str:
    return f"kpi-{kpi.name}-alerts"


def ratio_group_name(ratio: Ratio, records: bool) -> str:
    return f"ratio-{ratio.name}.rules" if records else f"ratio-{ratio.name}-alerts"


def build_rules(spec: Spec) -> RuleSet:
    """All rules for a valid spec, in a stable order (health, KPIs, ratios by name, custom)."""
    alerts = _groups(HEALTH_GROUP, health_rules(spec), ALERT_INTERVAL)
    records: list[RuleGroup] = []
    for kpi in sorted(spec.kpis, key=lambda k: k.name):
        slo_alerts = [rule for sli in kpi_slis(spec, kpi) for rule in burn_alerts(spec, sli)]
        alerts += _groups(kpi_group_name(kpi), kpi_alerts(spec, kpi) + slo_alerts, ALERT_INTERVAL)
        if kpi.anomaly is not None:
            records += _groups(
                f"kpi-{kpi.name}.rules", baseline_records(spec, kpi), BASELINE_INTERVAL
            )
        records += kpi_slo_records(spec, kpi)
    for ratio in sorted(spec.ratios, key=lambda r: r.name):
        records += ratio_records(spec, ratio)
        alerts += _groups(ratio_group_name(ratio, False), ratio_alerts(spec, ratio), ALERT_INTERVAL)
    alerts += _groups(CUSTOM_GROUP, free_alerts(spec), ALERT_INTERVAL)
    records += _groups(CUSTOM_RECORDS_GROUP, free_records(spec))
    return RuleSet(tuple(alerts), tuple(records))
