"""The `/` status page: each KPI with its schedule, last run, last error and small charts of
its recent polls, as escaped HTML with inline SVG (no script)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from exporter import __version__
from exporter.svgchart import line_chart


@dataclass(frozen=True)
class KpiRow:
    """What the page shows of one KPI."""

    name: str
    type: str
    database: str
    schedule: str
    state: str
    last_run: float | None
    duration: float | None
    series: int
    next_run: dt.datetime | None
    error: str | None
    values: Sequence[tuple[float, float]] = ()  # (time, total across series) per good poll
    durations: Sequence[tuple[float, float]] = ()  # (time, seconds) per poll
    target: float | None = None


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _charts(row: KpiRow) -> str:
    name = html.escape(row.name)
    target = "" if row.target is None else f", target {row.target:g}"
    last = f", last {row.values[-1][1]:g}" if row.values else ""
    return line_chart(
        row.values, target=row.target, label=f"{name}: total{last}{target}"
    ) + line_chart(
        row.durations, height=20, label=f"{name}: poll duration", css_class="chart duration"
    )


def render(rows: Iterable[KpiRow], links: Iterable[tuple[str, str]] = ()) -> bytes:
    """The whole page; every value from the spec or a database is escaped."""
    e = html.escape
    body = []
    for row in rows:
        failing = row.state == "failed"
        body.append(
            f'<tr class="kpi {e(row.state)}" id="kpi-{e(row.name)}">'
            f"<td>{e(row.name)}</td><td>{e(row.type)}</td><td>{e(row.database)}</td>"
            f"<td>{e(row.schedule)}</td>"
            f'<td class="state">{"FAILING" if failing else e(row.state)}</td>'
            f"<td>{e(_when(row.last_run))}</td>"
            f"<td>{'' if row.duration is None else f'{row.duration * 1000:.1f} ms'}</td>"
            f"<td>{row.series}</td>"
            f"<td>{e(row.next_run.strftime('%H:%M:%S UTC')) if row.next_run else ''}</td>"
            f'<td class="error">{e(row.error or "")}</td>'
            f"<td>{_charts(row)}</td></tr>"
        )
    nav = " · ".join(f'<a href="{e(href)}">{e(text)}</a>' for text, href in links)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kpi-exporter</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}
tr.failed td{{background:#fde8e8}} tr.failed td.state{{color:#b00;font-weight:bold}}
tr.ok td.state{{color:#070}} td.error{{font-family:monospace;white-space:pre-wrap}}
svg.chart{{display:block;background:#f7f9fc}} svg.duration polyline{{stroke:#888}}
</style></head><body>
<h1>kpi-exporter {e(__version__)}</h1>
<p>{nav}</p>
<table><thead><tr><th>KPI</th><th>type</th><th>database</th><th>schedule</th><th>state</th>
<th>last run</th><th>duration</th><th>series</th><th>next run</th><th>last error</th>
<th>recent total · poll duration</th></tr></thead>
<tbody>
{"".join(body)}
</tbody></table></body></html>
"""
    return page.encode()
