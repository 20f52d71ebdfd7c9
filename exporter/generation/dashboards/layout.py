"""Placing panels on Grafana's 24-column grid: lines filled to the full width, panels shown
once, rows after the first collapsed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from exporter.generation.dashboards.model import GRID_WIDTH, JSON, Panel, Row


def _lines(panels: Iterable[Panel]) -> list[list[Panel]]:
    """Panels split into grid lines: a new line where a panel asks for one or no longer fits."""
    lines: list[list[Panel]] = []
    used = GRID_WIDTH
    for panel in panels:
        width = max(1, min(panel.width, GRID_WIDTH))
        if not lines or panel.new_line or used + width > GRID_WIDTH:
            lines.append([])
            used = 0
        lines[-1].append(panel)
        used += width
    return lines


def filled(panels: Iterable[Panel]) -> tuple[Panel, ...]:
    """The panels with each grid line's widths scaled to sum to 24 (no empty half-lines),
    in their proportions; the last panel of a line takes the rounding."""
    result: list[Panel] = []
    for line in _lines(panels):
        widths = [max(1, min(p.width, GRID_WIDTH)) for p in line]
        total = sum(widths)
        scaled = [w * GRID_WIDTH // total for w in widths]
        scaled[-1] += GRID_WIDTH - sum(scaled)
        result.extend(
            dataclasses.replace(p, width=w, new_line=i == 0)
            for i, (p, w) in enumerate(zip(line, scaled, strict=True))
        )
    return tuple(result)


def shown_once(rows: Sequence[Row]) -> tuple[Row, ...]:
    """Rows without a panel that repeats an earlier one (same kind and same queries); a row
    left empty goes. The first showing is kept: the RED row's before a KPI's own."""
    seen: set[tuple[str, tuple[tuple[str, bool], ...]]] = set()
    result: list[Row] = []
    for row in rows:
        kept: list[Panel] = []
        new_line = False
        for panel in row.panels:
            key = (panel.kind, tuple((t.expr, t.instant) for t in panel.targets))
            if key in seen:
                new_line = new_line or panel.new_line
                continue
            seen.add(key)
            kept.append(dataclasses.replace(panel, new_line=panel.new_line or new_line))
            new_line = False
        if kept:
            result.append(dataclasses.replace(row, panels=tuple(kept)))
    return tuple(result)


@dataclass
class Grid:
    """Flow layout on the grid; lines come filled (see `filled`)."""

    x: int = 0
    y: int = 0
    line_height: int = 0
    ids: set[int] = field(default_factory=set)

    def place(self, width: int, height: int) -> JSON:
        width = max(1, min(width, GRID_WIDTH))
        if self.x + width > GRID_WIDTH:
            self.newline()
        pos = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.line_height = max(self.line_height, height)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.line_height
        self.x, self.line_height = 0, 0
