"""All rules of a spec in groups, in a stable order (monitoring-mixin style)."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.generation.rules.free import free_alerts, free_records
from exporter.generation.rules.health import health_rules
from exporter.generation.rules.kpis import kpi_alerts
from exporter.generation.rules.model import AlertRule, RecordRule, Rule, RuleGroup, RuleSet
from exporter.generation.rules.ratios import ratio_record, ratio_threshold_alert
from exporter.generation.rules.slo import burn_alerts, slo_records
from exporter.spec.model import Kpi, Ratio, Spec

MAX_GROUP_RULES = 20
HEALTH_GROUP = "kpi-exporter-health"
CUSTOM_GROUP = "kpi-exporter-custom-alerts"
CUSTOM_RECORDS_GROUP = "kpi-exporter-custom.rules"


def ratio_records(spec: Spec, ratio: Ratio) -> list[RecordRule]:
    rules = [ratio_record(spec, ratio)]
    if ratio.slo is not None:
        rules.extend(slo_records(spec, ratio))
    return rules


def ratio_alerts(spec: Spec, ratio: Ratio) -> list[AlertRule]:
    rules = [ratio_threshold_alert(spec, ratio, t) for t in ratio.alerts]
    if ratio.slo is not None:
        rules.extend(burn_alerts(spec, ratio))
    return rules


def _groups(name: str, rules: Sequence[Rule]) -> list[RuleGroup]:
    """One group, or numbered groups of at most MAX_GROUP_RULES rules."""
    if not rules:
        return []
    if len(rules) <= MAX_GROUP_RULES:
        return [RuleGroup(name, tuple(rules))]
    chunks = range(0, len(rules), MAX_GROUP_RULES)
    return [
        RuleGroup(f"{name}-{n}", tuple(rules[start : start + MAX_GROUP_RULES]))
        for n, start in enumerate(chunks, 1)
    ]


def kpi_group_name(kpi: Kpi) -> str:
    return f"kpi-{kpi.name}-alerts"


def ratio_group_name(ratio: Ratio, records: bool) -> str:
    return f"ratio-{ratio.name}.rules" if records else f"ratio-{ratio.name}-alerts"


def build_rules(spec: Spec) -> RuleSet:
    """All rules for a valid spec, in a stable order (health, KPIs, ratios by name, custom)."""
    alerts = _groups(HEALTH_GROUP, health_rules(spec))
    for kpi in sorted(spec.kpis, key=lambda k: k.name):
        alerts += _groups(kpi_group_name(kpi), kpi_alerts(spec, kpi))
    records: list[RuleGroup] = []
    for ratio in sorted(spec.ratios, key=lambda r: r.name):
        records += _groups(ratio_group_name(ratio, True), ratio_records(spec, ratio))
        alerts += _groups(ratio_group_name(ratio, False), ratio_alerts(spec, ratio))
    alerts += _groups(CUSTOM_GROUP, free_alerts(spec))
    records += _groups(CUSTOM_RECORDS_GROUP, free_records(spec))
    return RuleSet(tuple(alerts), tuple(records))
