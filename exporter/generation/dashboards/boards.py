"""Boards from the spec: its dashboards, 'All KPIs' for what none lists, exporter health."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

from exporter.generation.dashboards.health import health_board
from exporter.generation.dashboards.kpis import display_title, kpi_panels
from exporter.generation.dashboards.layout import shown_once
from exporter.generation.dashboards.model import ALL_KPIS_UID, HEALTH_UID, Board, Panel, Row
from exporter.generation.dashboards.ratios import ratio_panels
from exporter.generation.dashboards.records import record_panels
from exporter.generation.dashboards.red import find_red, red_row
from exporter.generation.dashboards.slos import kpi_slo_rows, ratio_slo_panels
from exporter.spec.model import Dashboard, Spec


def _slug(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:40].strip("-") or "dashboard"


def _unique(uid: str, taken: set[str]) -> str:
    candidate, n = uid, 2
    while candidate in taken:
        tail = f"-{n}"
        candidate, n = uid[: 40 - len(tail)] + tail, n + 1
    taken.add(candidate)
    return candidate


def _item_panels(spec: Spec, name: str) -> tuple[tuple[Panel, ...], list[Row]]:
    """Panels for a KPI, ratio or record name, and a row for each of its SLOs."""
    for ratio in spec.ratios:
        if ratio.name == name:
            if ratio.slo is None:
                return ratio_panels(spec, ratio), []
            slo = Row(f"SLO: {display_title(name)}", ratio_slo_panels(spec, ratio))
            return ratio_panels(spec, ratio), [slo]
    for record in spec.records:
        if record.record == name:
            return record_panels(spec, record), []
    kpi = spec.kpi(name)
    slos = [Row(f"SLO: {title}", panels) for title, panels in kpi_slo_rows(spec, kpi)]
    return kpi_panels(spec, kpi), slos


def _rows(spec: Spec, titled: Iterable[tuple[str, Sequence[str]]]) -> tuple[Row, ...]:
    records = {record.record for record in spec.records}
    rows: list[Row] = []
    for title, names in titled:
        panels: list[Panel] = []
        slo_rows: list[Row] = []
        for previous, name in zip((None, *names), names, strict=False):
            main, slo = _item_panels(spec, name)
            # a KPI starts a new line; records (half width) sit two to a line
            flows = name in records and previous in records
            panels.append(dataclasses.replace(main[0], new_line=not flows))
            panels.extend(main[1:])
            slo_rows.extend(slo)
        rows.append(Row(title, tuple(panels)))
        rows.extend(slo_rows)
    return tuple(rows)


def boards(spec: Spec) -> tuple[Board, ...]:
    """Every dashboard: the spec's own, 'All KPIs' for what none lists, and exporter health."""
    taken = {HEALTH_UID, ALL_KPIS_UID}
    result: list[Board] = []
    listed: set[str] = set()
    for dashboard in spec.dashboards:
        result.append(_board(spec, dashboard, taken))
        listed.update(name for row in dashboard.rows for name in row.kpis)
    left = [k for k in spec.kpis if k.name not in listed]
    ratios = [r.name for r in spec.ratios if r.name not in listed]
    records = [r.record for r in spec.records if r.record not in listed]
    if left or ratios or records:
        groups = []
        for kind, title in (
            ("gauge", "Gauges"),
            ("counter", "Counters"),
            ("histogram", "Histograms"),
        ):
            names = [k.name for k in left if k.type == kind]
            if names:
                groups.append((title, names))
        if ratios:
            groups.append(("Ratios", ratios))
        if records:
            groups.append(("Records", records))
        result.append(
            Board(
                uid=ALL_KPIS_UID,
                title="All KPIs",
                description="Every KPI, ratio and record of the spec that no other dashboard "
                "lists.",
                rows=_rows(spec, groups),
            )
        )
    result.append(health_board())
    spans = any(kpi.spans_databases for kpi in spec.kpis)  # a $database variable on each
    return tuple(dataclasses.replace(b, rows=shown_once(b.rows), databases=spans) for b in result)


def _board(spec: Spec, dashboard: Dashboard, taken: set[str]) -> Board:
    """A dashboard of the spec: its RED row first when its KPIs make one (red.py), then its
    rows."""
    uid = _unique(dashboard.uid or _slug(dashboard.title), taken)
    rows = _rows(spec, ((row.title, row.kpis) for row in dashboard.rows))
    names = [name for row in dashboard.rows for name in row.kpis]
    red = None if dashboard.red is False else find_red(spec, names, dashboard.red)
    return Board(
        uid=uid,
        title=dashboard.title,
        description=dashboard.description or f"{dashboard.title}, generated from the KPI spec.",
        rows=rows if red is None else (red_row(spec, red), *rows),
    )
