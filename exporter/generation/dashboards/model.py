"""Dashboards as values before rendering (board, row, panel, query) and the constants
the layout and the rendering share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 41  # Grafana 11.6's dashboard schema; the SDK test pins the same build
TAG = "kpi-exporter"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HEALTH_UID = "kpi-exporter-health"
ALL_KPIS_UID = "kpi-exporter-all-kpis"
PROVISIONING_PATH = "provisioning/dashboards.yaml"
GRID_WIDTH = 24
HEIGHT = 8
RED_HEIGHT = 6  # the RED row: its header and panels in the first 7 grid units
QUANTILES = (0.5, 0.95, 0.99)
TARGET_WIDTH = 6

JSON = dict[str, Any]

SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}
OFF_TARGET = "yellow"
OK = "green"


@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str
    instant: bool = False
    table: bool = False
    heatmap: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel before layout: what it shows, how wide it is, and a key its id derives from."""

    key: str
    kind: str
    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    width: int = 12
    steps: tuple[tuple[float | None, str], ...] = ((None, OK),)
    minimum: float | None = None
    maximum: float | None = None
    axis_label: str = ""
    mappings: tuple[tuple[str, str, str], ...] = ()  # value, text, color
    new_line: bool = False  # start on a new grid line (the first panel of a KPI)
    height: int = HEIGHT


@dataclass(frozen=True)
class Row:
    """A titled row of panels."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Board:
    """A dashboard before rendering."""

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    time_from: str = "now-24h"
    databases: bool = False  # a $database variable: some KPI of the spec spans databases
