"""`report --format html`: one self-contained page (inline CSS and SVG, nothing fetched) with
each KPI's value, target, status and a chart of its trend over the report window."""

from __future__ import annotations

import datetime as dt
import html

from exporter.conventions import format_duration
from exporter.generation.report import Report, ReportRow
from exporter.svgchart import line_chart

CHART_WIDTH, CHART_HEIGHT = 360, 72
STATUS_WORDS = {
    "on_target": "on target",
    "below_target": "below target",
    "above_target": "above target",
    "no_target": "no target",
    "no_data": "no data",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse} td,th{border-bottom:1px solid #ddd;padding:.4em .7em;
text-align:left;vertical-align:middle} td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:bold} .on_target{color:#070} .below_target,.above_target{color:#b00}
.no_target,.no_data{color:#777} svg.chart{display:block;background:#f7f9fc}
small{color:#666}
"""


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.6g}"


def _row(row: ReportRow, start: float, end: float) -> str:
    e = html.escape
    target = "&ndash;" if row.target is None else f"{e(row.direction or '')} {_number(row.target)}"
    change = "" if row.change is None else f" {row.change:+.1%}"
    was = "" if row.previous is None else f"<br><small>from {_number(row.previous)}</small>"
    chart = line_chart(
        row.points,
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        target=row.target,
        label=e(f"{row.kpi}: {len(row.points)} points"),
        span=(start, end),
    )
    return (
        f'<tr class="kpi" id="kpi-{e(row.kpi)}" data-points="{len(row.points)}">'
        f"<td><b>{e(row.kpi)}</b><br><small>{e(row.kind)}</small></td>"
        f'<td class="num current">{_number(row.current)}</td>'
        f'<td class="num target">{target}</td>'
        f'<td class="status {e(row.status)}">{e(STATUS_WORDS.get(row.status, row.status))}</td>'
        f'<td class="trend">{e(row.trend)}{change}{was}</td>'
        f'<td class="num range">{_number(row.minimum)} / {_number(row.average)} / '
        f"{_number(row.maximum)}</td>"
        f"<td>{chart}</td></tr>"
    )


def render_html(report: Report) -> str:
    """The whole page; KPI names and Prometheus' URL are escaped."""
    e = html.escape
    start = report.at - report.range_seconds
    window = format_duration(report.range_seconds)
    rows = "\n".join(_row(row, start, report.at) for row in report.rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KPI report, last {e(window)}</title>
<style>{STYLE}</style></head>
<body data-at="{report.at:.3f}" data-start="{start:.3f}" data-step="{report.step:g}">
<h1>KPI report</h1>
<p>{e(report.summary())}</p>
<p><small>From {e(_when(start))} to {e(_when(report.at))}, as stored in Prometheus at
{e(report.prometheus)}. Each chart spans the whole window (dashed: the target); the trend
compares now with the value one window ago.</small></p>
<table><thead><tr><th>KPI</th><th>now</th><th>target</th><th>status</th><th>trend</th>
<th>min / avg / max</th><th>over the last {e(window)}</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""
