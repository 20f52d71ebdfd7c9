"""Free-form alerts and recording rules, copied from the spec."""

from __future__ import annotations

from exporter.generation.rules.model import AlertRule, RecordRule, alert_rule
from exporter.spec.model import Spec


def free_alerts(spec: Spec) -> list[AlertRule]:
    return [
        alert_rule(
            spec,
            alert.name,
            alert.expr.strip(),
            alert.for_,
            {**alert.labels, "severity": alert.severity, "kpi": alert.kpi or ""},
            alert.summary,
            alert.description,
        )
        for alert in spec.alerts
    ]


def free_records(spec: Spec) -> list[RecordRule]:
    return [RecordRule(r.record, r.expr.strip()) for r in spec.records]
