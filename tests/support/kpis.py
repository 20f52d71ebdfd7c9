"""A minimal valid Kpi model with chosen fields, for tests of one KPI's scheduling."""

from __future__ import annotations

from exporter.spec.model import Kpi


def kpi(**fields: object) -> Kpi:
    base: dict[str, object] = {"name": "k", "type": "gauge", "database": "app", "query": "SELECT 1"}
    base.update(fields)
    return Kpi.model_validate(base)
