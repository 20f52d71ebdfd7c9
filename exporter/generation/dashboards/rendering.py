"""Boards rendered as Grafana dashboard JSON: rows (the first open, the others collapsed with
their panels inside), panels placed by layout.py, template variables."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from exporter.conventions import SelfMetric as M
from exporter.generation.dashboards.layout import Grid, filled
from exporter.generation.dashboards.model import (
    DATASOURCE,
    GRID_WIDTH,
    JSON,
    SCHEMA_VERSION,
    TAG,
    Board,
    Panel,
)

# the databases the self-metrics name (KPI series may call the label otherwise)
DATABASE_VALUES = f'label_values({M.KPI_UP}{{job=~"$job"}}, database)'


def _panel_id(key: str, taken: set[int]) -> int:
    """A stable id from the panel's key, so links to a panel survive edits elsewhere."""
    number = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 1_000_000 + 1
    while number in taken:
        number += 1
    taken.add(number)
    return number


def render_board(board: Board) -> JSON:
    """The Grafana dashboard object (importable as is, no __inputs); long only by the JSON
    Grafana expects, written out."""
    layout = Grid()
    panels: list[JSON] = []
    for index, row in enumerate(board.rows):
        # the first row is open; the rest are collapsed, their panels nested in the row
        collapsed = index > 0
        layout.newline()
        header: JSON = {
            "collapsed": collapsed,
            "gridPos": layout.place(GRID_WIDTH, 1),
            "id": _panel_id(f"row/{row.title}", layout.ids),
            "panels": [],
            "title": row.title,
            "type": "row",
        }
        panels.append(header)
        layout.newline()
        inner = Grid(y=layout.y, ids=layout.ids) if collapsed else layout
        placed = header["panels"] if collapsed else panels
        for panel in filled(row.panels):
            if panel.new_line:
                inner.newline()
            placed.append(_render_panel(panel, inner))
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": board.description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [
            {
                "asDropdown": True,
                "icon": "external link",
                "includeVars": True,
                "keepTime": True,
                "tags": [TAG],
                "targetBlank": False,
                "title": "KPI dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            }
        ],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": {"list": _variables(board.databases)},
        "time": {"from": board.time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": board.title,
        "uid": board.uid,
        "version": 1,
        "weekStart": "",
    }


def _variables(databases: bool) -> list[JSON]:
    """Data source, job and instance; and database when some KPI spans databases (its values
    from the self-metrics, which name every polled database)."""

    def query_variable(name: str, query: str) -> JSON:
        return {
            "allValue": ".+",
            "current": {},
            "datasource": dict(DATASOURCE),
            "hide": 0,
            "includeAll": True,
            "label": name.title(),
            "multi": True,
            "name": name,
            "options": [],
            "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor"},
            "refresh": 2,
            "regex": "",
            "skipUrlSync": False,
            "sort": 1,
            "type": "query",
        }

    return [
        {
            "current": {},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        query_variable("job", f"label_values({M.BUILD}, job)"),
        query_variable("instance", f'label_values({M.BUILD}{{job=~"$job"}}, instance)'),
    ] + ([query_variable("database", DATABASE_VALUES)] if databases else [])


def _render_panel(panel: Panel, layout: Grid) -> JSON:
    """A panel's Grafana JSON: queries, field defaults and thresholds, placed by the layout."""
    ref_ids = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    targets = []
    for index, target in enumerate(panel.targets):
        item: JSON = {
            "datasource": dict(DATASOURCE),
            "editorMode": "code",
            "expr": target.expr,
            "instant": target.instant,
            "legendFormat": target.legend,
            "range": not target.instant,
            "refId": ref_ids[index],
        }
        if target.table:
            item["format"] = "table"
        elif target.heatmap:
            item["format"] = "heatmap"
        targets.append(item)
    defaults: JSON = {
        "color": {
            "mode": "thresholds"
            if panel.kind in ("stat", "gauge", "bargauge")
            else "palette-classic"
        },
        "mappings": [_mapping(panel.mappings)] if panel.mappings else [],
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.steps],
        },
        "unit": panel.unit,
    }
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "axisLabel": panel.axis_label,
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "off" if len(panel.steps) == 1 else "dashed"},
        }
    result: JSON = {
        "datasource": dict(DATASOURCE),
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "gridPos": layout.place(panel.width, panel.height),
        "id": _panel_id(panel.key, layout.ids),
        "options": _options(panel),
        "targets": targets,
        "title": panel.title,
        "type": panel.kind,
    }
    if any(t.table for t in panel.targets):
        result["transformations"] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ]
    return result


def _mapping(mappings: Sequence[tuple[str, str, str]]) -> JSON:
    return {
        "options": {
            value: {"color": color, "index": index, "text": text}
            for index, (value, text, color) in enumerate(mappings)
        },
        "type": "value",
    }


def _options(panel: Panel) -> JSON:
    """Grafana's options of the panel's kind: one literal per kind, hence the length."""
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "timeseries":
        return {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if panel.kind == "stat":
        # a sparkline needs a range of values; an instant query (a range total) has one
        sparkline = not all(t.instant for t in panel.targets)
        return {
            "colorMode": "value",
            "graphMode": "area" if sparkline else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": reduce,
            "showPercentChange": False,
            "textMode": "auto",
            "wideLayout": True,
        }
    if panel.kind == "gauge":
        return {
            "minVizHeight": 75,
            "minVizWidth": 75,
            "orientation": "auto",
            "reduceOptions": reduce,
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
            "sizing": "auto",
        }
    if panel.kind == "bargauge":
        return {
            "displayMode": "gradient",
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "auto",
            "orientation": "horizontal",
            "reduceOptions": reduce,
            "showUnfilled": True,
            "sizing": "auto",
            "valueMode": "color",
        }
    if panel.kind == "table":
        return {"cellHeight": "sm", "showHeader": True}
    # heatmap of pre-bucketed Prometheus histograms
    return {
        "calculate": panel.targets[0].heatmap is False,
        "cellGap": 1,
        "color": {
            "exponent": 0.5,
            "fill": "dark-orange",
            "mode": "scheme",
            "reverse": False,
            "scale": "exponential",
            "scheme": "Oranges",
            "steps": 64,
        },
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": panel.unit},
    }
