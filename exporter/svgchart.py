"""Small inline SVG line charts for the status page and the HTML report; no JavaScript.

A bottom module (it imports nothing from exporter) so both the serving layer and the
generators, which read only the spec, can draw the same chart."""

from __future__ import annotations

import math
from collections.abc import Sequence

PAD = 2.0  # keeps the stroke of a line on the edge inside the picture


class Frame:
    """Maps (time, value) to pixels: time left to right over the points' span, value bottom
    to top over the values' range (widened to hold the target). A single instant or a flat
    line sits in the middle. `span` (start, end) fixes the time axis, e.g. to a report's
    window, so a gap in the data shows as one."""

    def __init__(
        self,
        points: Sequence[tuple[float, float]],
        width: float,
        height: float,
        target: float | None = None,
        span: tuple[float, float] | None = None,
    ) -> None:
        self.points = [(t, v) for t, v in points if math.isfinite(v)]
        values = [v for _, v in self.points] + ([] if target is None else [target])
        times = list(span) if span else [t for t, _ in self.points] or [0.0]
        self.t0, t_span = times[0], times[-1] - times[0]
        self.low = min(values, default=0.0)
        v_span = max(values, default=0.0) - self.low
        inner_w, inner_h = width - 2 * PAD, height - 2 * PAD
        self.x_per = inner_w / t_span if t_span > 0 else 0.0
        self.y_per = inner_h / v_span if v_span > 0 else 0.0
        self.x_start = PAD if t_span > 0 else PAD + inner_w / 2
        self.y_bottom = height - PAD if v_span > 0 else PAD + inner_h / 2

    def y(self, value: float) -> float:
        return self.y_bottom - (value - self.low) * self.y_per

    def coordinates(self) -> list[tuple[float, float]]:
        x0, t0, x_per = self.x_start, self.t0, self.x_per
        y0, low, y_per = self.y_bottom, self.low, self.y_per
        return [(x0 + (t - t0) * x_per, y0 - (v - low) * y_per) for t, v in self.points]


def polyline(coordinates: Sequence[tuple[float, float]]) -> str:
    """The `points` attribute of an SVG polyline, one decimal per coordinate."""
    return " ".join([f"{x:.1f},{y:.1f}" for x, y in coordinates])


def line_chart(
    points: Sequence[tuple[float, float]],
    width: int = 160,
    height: int = 32,
    target: float | None = None,
    label: str = "",
    css_class: str = "chart",
    span: tuple[float, float] | None = None,
) -> str:
    """An <svg> of the points as one polyline, with a dashed target line when given.
    `label` becomes its accessible title (the caller has escaped it)."""
    frame = Frame(points, width, height, target, span)
    coordinates = frame.coordinates()
    parts = [
        f'<svg class="{css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    if label:
        parts.append(f"<title>{label}</title>")
    if target is not None and coordinates:
        y = frame.y(target)
        parts.append(
            f'<line class="target" x1="0" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c60" stroke-dasharray="3,2" stroke-width="1" shape-rendering="crispEdges"/>'
        )
    if len(coordinates) == 1:
        x, y = coordinates[0]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.5" fill="#36c"/>')
    elif coordinates:
        parts.append(
            f'<polyline points="{polyline(coordinates)}" fill="none" stroke="#36c" '
            'stroke-width="1.2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
