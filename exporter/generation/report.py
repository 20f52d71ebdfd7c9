"""KPI reports from Prometheus' HTTP API: value now and one range ago, trend, target status."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from exporter.conventions import format_duration
from exporter.generation.promql import kpi_value, selector
from exporter.spec.model import Kpi, Ratio, Spec, Target

RANGE_POINTS = 60  # points of the range query: enough for min/avg/max, cheap for Prometheus


class PrometheusError(Exception):
    """Prometheus could not be asked or refused the question; the message says which."""


@dataclass(frozen=True)
class ReportRow:
    """One KPI or ratio in the report."""

    kpi: str
    kind: str
    current: float | None
    previous: float | None
    change: float | None
    trend: str  # up | down | flat | unknown
    target: float | None
    direction: str | None
    status: str  # on_target | below_target | above_target | no_target | no_data
    towards_target: bool | None
    minimum: float | None
    average: float | None
    maximum: float | None
    expr: str
    # the range query's (time, value) pairs over the report window: the HTML report's chart
    points: tuple[tuple[float, float], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Report:
    prometheus: str
    at: float
    range_seconds: float
    rows: tuple[ReportRow, ...]
    step: float = 0.0  # of the range queries behind each row's points

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        parts = [
            f"{counts.get(key, 0)} {words}"
            for key, words in (
                ("on_target", "on target"),
                ("below_target", "below target"),
                ("above_target", "above target"),
                ("no_target", "without target"),
                ("no_data", "without data"),
            )
        ]
        return f"{len(self.rows)} KPIs over {format_duration(self.range_seconds)}: " + ", ".join(
            parts
        )


class PrometheusApi:
    """The two queries a report needs, over requests, each bounded by a timeout."""

    def __init__(self, url: str, timeout: float = 10.0, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = self.session.get(self.url + path, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url}: {type(exc).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"{self.url}{path} answered HTTP {response.status_code} without JSON: "
                "is this a Prometheus server?"
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            kind = body.get("errorType") if isinstance(body, dict) else None
            raise PrometheusError(
                f"Prometheus refused {params.get('query', '')!r} "
                f"(HTTP {response.status_code}, {kind}): {error}"
            )
        return body["data"]

    def instant(self, expr: str, at: float) -> float | None:
        """The single value of `expr` at `at`; None when it has no sample."""
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        result = data.get("result") or []
        if data.get("resultType") == "scalar":
            return _number(result[1])
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{expr!r} returned {len(result)} series, expected one")
        return _number(result[0]["value"][1])

    def range(self, expr: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        """The (time, value) pairs of `expr` between start and end (one series), NaN left out."""
        data = self._get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        points: list[tuple[float, float]] = []
        for series in data.get("result") or []:
            for stamp, text in series.get("values", []):
                number = _number(text)
                if number is not None:
                    points.append((float(stamp), number))
        return points

    def samples(
        self, selector: str, seconds: float, at: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """The raw samples of `selector` over the `seconds` before `at`: each series' labels
        and its (time, value) pairs, as stored (no extrapolation, no rate)."""
        expr = f"{selector}[{max(1, math.ceil(seconds))}s]"
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        return [
            (
                dict(series.get("metric") or {}),
                [(float(t), float(v)) for t, v in series.get("values", [])],
            )
            for series in data.get("result") or []
        ]


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def rate_window(spec: Spec) -> float:
    """Window for rates: four scrapes at least, a minute at least."""
    return max(4 * spec.exporter.scrape_interval, 60.0)


def expression(spec: Spec, item: Kpi | Ratio) -> str:
    """The value of a KPI or ratio, as the dashboards' target panels show it (promql.kpi_value),
    over the rules' selector; a ratio's rates use its own window."""
    window = item.window if isinstance(item, Ratio) else rate_window(spec)
    return kpi_value(spec, item, selector(spec), format_duration(window))


def judge(value: float | None, target: Target | None) -> str:
    if target is None:
        return "no_target"
    if value is None:
        return "no_data"
    if target.direction == "above":
        return "on_target" if value >= target.value else "below_target"
    return "on_target" if value <= target.value else "above_target"


def trend(current: float | None, previous: float | None) -> tuple[str, float | None]:
    """Direction and relative change (None when the previous value is 0 or missing)."""
    if current is None or previous is None:
        return "unknown", None
    tolerance = 1e-9 * max(1.0, abs(previous))
    direction = "flat"
    if current > previous + tolerance:
        direction = "up"
    elif current < previous - tolerance:
        direction = "down"
    change = (current - previous) / abs(previous) if previous else None
    return direction, change


def build_report(spec: Spec, api: PrometheusApi, range_seconds: float, at: float) -> Report:
    """Ask Prometheus about every KPI and ratio of the spec, all at the same instant."""
    items: list[Kpi | Ratio] = [*spec.kpis, *spec.ratios]
    step = max(range_seconds / RANGE_POINTS, 1.0)
    rows = []
    for item in sorted(items, key=lambda i: i.name):
        expr = expression(spec, item)
        current = api.instant(expr, at)
        previous = api.instant(expr, at - range_seconds)
        points = api.range(expr, at - range_seconds, at, step)
        series = [v for _, v in points]
        direction, change = trend(current, previous)
        target = item.target
        towards = None
        if target is not None and direction in ("up", "down"):
            towards = (direction == "up") == (target.direction == "above")
        rows.append(
            ReportRow(
                kpi=spec.metric_name(item) if isinstance(item, Kpi) else item.name,
                kind="ratio" if isinstance(item, Ratio) else item.type,
                current=current,
                previous=previous,
                change=change,
                trend=direction,
                target=target.value if target else None,
                direction=target.direction if target else None,
                status=judge(current, target),
                towards_target=towards,
                minimum=min(series) if series else None,
                average=sum(series) / len(series) if series else None,
                maximum=max(series) if series else None,
                expr=expr,
                points=tuple(points),
            )
        )
    return Report(api.url, at, range_seconds, tuple(rows), step)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def render(report: Report, fmt: str) -> str:
    """The report as an aligned table, JSON, or CSV (one row per KPI); HTML is report_html's."""
    if fmt == "json":
        data = {
            "prometheus": report.prometheus,
            "at": report.at,
            "range_seconds": report.range_seconds,
            "summary": report.summary(),
            "kpis": [asdict(row) for row in report.rows],
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        fields = [name for name in ReportRow.__dataclass_fields__ if name != "points"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in report.rows:
            writer.writerow(
                {
                    k: _fmt(v) if isinstance(v, float) else ("" if v is None else v)
                    for k, v in asdict(row).items()
                    if k != "points"
                }
            )
        return out.getvalue()
    ago = format_duration(report.range_seconds)
    header = ("KPI", "kind", "now", f"{ago} ago", "trend", "target", "status")
    lines = [header]
    for row in report.rows:
        change = f" {row.change:+.1%}" if row.change is not None else ""
        target = f"{row.direction} {_fmt(row.target)}" if row.target is not None else "-"
        lines.append(
            (
                row.kpi,
                row.kind,
                _fmt(row.current) or "-",
                _fmt(row.previous) or "-",
                row.trend + change,
                target,
                row.status,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
    return text + "\n" + report.summary() + "\n"
