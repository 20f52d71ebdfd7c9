"""A valid base spec and writers of spec files with one KPI, shared by the spec tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

BASE = """\
exporter:
  labels: {service: billing}
databases:
  app:
    dsn: sqlite:///app.db
kpis:
  - name: active_users
    type: gauge
    database: app
    interval: 30s
    query: SELECT count(*) AS value FROM sessions
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def kpi(extra: str, name: str = "bad_kpi", kind: str = "gauge", query: str | None = None) -> str:
    body = f"""\
  - name: {name}
    type: {kind}
    database: app
    interval: 30s
    query: {query or "SELECT 1 AS value"}
"""
    return BASE + body + textwrap.indent(textwrap.dedent(extra), "    ")
