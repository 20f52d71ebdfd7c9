"""A spec with KPIs on several databases (a list and a glob) beside one on a single database,
shared by the generation tests of the many-databases feature."""

from __future__ import annotations

from pathlib import Path

from exporter.spec.loading import load_spec
from exporter.spec.model import Spec

MANY_DATABASES = """\
exporter:
  labels: {service: shop}
databases:
  eu: {dsn: "sqlite:///eu.db", labels: {region: europe}}
  us: {dsn: "sqlite:///us.db", labels: {region: america}}
  tenant_a: {dsn: "sqlite:///a.db"}
  tenant_b: {dsn: "sqlite:///b.db"}
  app: {dsn: "sqlite:///app.db"}
kpis:
  - name: open_orders
    type: gauge
    database: [eu, us]
    interval: 1m
    query: SELECT 1 AS value
    alerts: [{severity: warning, above: 100, for: 5m}]
  - name: signups_total
    type: counter
    database: "tenant_*"
    interval: 1m
    labels: [plan]
    query: SELECT plan, 1 AS value FROM signups
    alerts: [{severity: warning, rate: 5m, below: 0.5, for: 10m}]
  - name: queue_depth
    type: gauge
    database: app
    interval: 1m
    query: SELECT 1 AS value
"""


def many_databases(tmp_path: Path) -> tuple[Path, Spec]:
    path = tmp_path / "many.yaml"
    path.write_text(MANY_DATABASES)
    return path, load_spec([path], env={}).spec


def events_kpi(columns: str, *keys: str) -> str:
    """`events_total`, a cursor counter of an `events` table by kind on databases eu and us,
    selecting `columns`, with more `key: value` lines (YAML under `kpis:`)."""
    lines = [
        "  - name: events_total",
        "    type: counter",
        "    database: [eu, us]",
        "    interval: 1m",
        "    labels: [kind]",
        "    cursor: id",
        *(f"    {key}" for key in keys),
        "    query: >-",
        f"      SELECT {columns} FROM events WHERE id > :cursor ORDER BY id LIMIT :batch",
    ]
    return "\n".join(lines) + "\n"
