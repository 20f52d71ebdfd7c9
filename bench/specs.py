"""The same KPIs written as a kpi-exporter spec and as a query-exporter configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SERVICE = "bench"


@dataclass(frozen=True)
class BenchKpi:
    """One measured KPI: its SQL, where `{value}` names the value column, labels, schedule."""

    name: str
    sql: str
    labels: tuple[str, ...] = ()
    interval: int = 6
    timeout: int = 30
    type: str = "gauge"
    extra: dict[str, Any] = field(default_factory=dict)

    def query(self, value_column: str) -> str:
        return self.sql.replace("{value}", value_column)


def write_kpi_exporter_spec(path: Path, dsn: str, kpis: list[BenchKpi], state_dir: Path) -> Path:
    path.write_text(yaml.safe_dump(kpi_exporter_spec(dsn, kpis, state_dir), sort_keys=False))
    return path


def kpi_exporter_spec(dsn: str, kpis: list[BenchKpi], state_dir: Path) -> dict[str, Any]:
    return {
        "exporter": {"labels": {"service": SERVICE}, "state_dir": str(state_dir)},
        "databases": {"db": {"dsn": dsn, "max_connections": 2}},
        "kpis": [
            {
                "name": kpi.name,
                "help": f"benchmark KPI {kpi.name}",
                "type": kpi.type,
                "database": "db",
                "interval": f"{kpi.interval}s",
                "timeout": f"{kpi.timeout}s",
                "max_series": 200_000,
                "query": kpi.query("value"),
                "labels": list(kpi.labels),
                **kpi.extra,
            }
            for kpi in kpis
        ],
    }


def write_query_exporter_config(path: Path, dsn: str, kpis: list[BenchKpi]) -> Path:
    """query-exporter reads a metric's value from the column named after the metric."""
    config = {
        "databases": {
            "db": {
                "dsn": dsn,
                "connection-pool": {"size": 2},  # the same bound as max_connections above
                "labels": {"service": SERVICE},
            }
        },
        "metrics": {
            kpi.name: {
                "type": kpi.type,
                "description": f"benchmark KPI {kpi.name}",
                **({"labels": list(kpi.labels)} if kpi.labels else {}),
            }
            for kpi in kpis
        },
        "queries": {
            kpi.name: {
                "databases": ["db"],
                "metrics": [kpi.name],
                "interval": kpi.interval,
                "timeout": kpi.timeout,
                "sql": kpi.query(kpi.name),
            }
            for kpi in kpis
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
