"""`report --format html` against a real Prometheus, looked at in headless Chromium: one chart
per KPI with as many points as Prometheus' range query answers, and the values it prints
equal to Prometheus' answers queried here independently."""

from __future__ import annotations

import re
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT, exporter_command, wait_until
from PIL import Image
from test_prod_report import _set
from test_prod_statuspage import CHROMIUM_FLAGS, _chromium
from test_production import gauge_spec, make_values_db

GAUGES = {"rising_gauge": 1.0, "latency_gauge": 3.0, "plain_gauge": 7.0}
TARGETS = {
    "rising_gauge": "{value: 1000, direction: above}",
    "latency_gauge": "{value: 2, direction: below}",
}
LINE_BLUE = (0x33, 0x66, 0xCC)


class ReportPage(HTMLParser):
    """The body's data attributes and, per KPI row, its cells' text and chart points."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self._row: str | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = found
        if tag == "tr" and found.get("id", "").startswith("kpi-"):
            self._row = found["id"].removeprefix("kpi-")
            self.rows[self._row] = {"data-points": found["data-points"], "points": ""}
        if self._row is None:
            return
        if tag == "td":
            classes = [c for c in found.get("class", "").split() if c != "num"]
            self._cell = classes[0] if classes else None  # current, target, status, ...
            if self._cell:
                self.rows[self._row][self._cell] = ""
        if tag == "polyline":
            self.rows[self._row]["points"] = found["points"]

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._cell:
            self.rows[self._row][self._cell] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if tag == "tr":
            self._row = None


def _spec(db: Path) -> str:
    text = gauge_spec(db, sorted(GAUGES))
    for name, target in TARGETS.items():
        marker = f"WHERE name = '{name}'\n"
        text = text.replace(marker, marker + f"    target: {target}\n")
    return text.replace(
        "  labels: {service: prodtest}\n", "  labels: {service: prodtest}\n  scrape_interval: 1s\n"
    )


def test_html_report_charts_equal_prometheus(run_exporter, run_prometheus, tmp_path: Path):
    browser = _chromium()
    db = tmp_path / "values.db"
    make_values_db(db, GAUGES)
    spec = tmp_path / "spec.yaml"
    spec.write_text(_spec(db))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    prometheus = run_prometheus(
        tmp_path / "prometheus",
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: kpi-exporter\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}']}}]\n",
    )
    prometheus.wait_ready()
    stop = threading.Event()

    def rise() -> None:  # rising_gauge climbs by one every second, bounded by the test's end
        value = 1.0
        while not stop.wait(1.0) and value < 600:
            value += 1
            _set(db, rising_gauge=value)

    riser = threading.Thread(target=rise, daemon=True)
    riser.start()
    try:

        def stored(expr: str) -> float | None:
            result = prometheus.query(expr)
            return float(result[0]["value"][1]) if result else None

        wait_until(
            lambda: (stored('count_over_time(rising_gauge{job="kpi-exporter"}[1m])') or 0) >= 25,
            90,
            what="25 s of rising_gauge in Prometheus",
        )
        _set(db, latency_gauge=1.5)
        wait_until(
            lambda: stored('latency_gauge{job="kpi-exporter"}') == 1.5,
            30,
            what="Prometheus to see latency_gauge change",
        )
        out = tmp_path / "report.html"
        command = [*exporter_command(), "report", "-c", str(spec), "--format", "html"]
        result = subprocess.run(
            [*command, "--prometheus", prometheus.url, "--range", "20s"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr
        out.write_text(result.stdout)
    finally:
        stop.set()
        riser.join(timeout=5)

    page = result.stdout
    # self-contained: nothing to fetch, nothing to run
    assert not re.search(r"\b(src|href)=|url\(|<script|<link|@import", page), page[:2000]

    def browse(profile: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / profile}",
                *args,
                out.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    dumped = browse("profile-dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    parsed = ReportPage()
    parsed.feed(dumped.stdout)
    assert set(parsed.rows) == set(GAUGES)
    at, start, step = (float(parsed.body[k]) for k in ("data-at", "data-start", "data-step"))
    assert at - start == 20.0 and step == 1.0

    def range_values(expr: str) -> list[float]:
        window = {"start": f"{start:.3f}", "end": f"{at:.3f}", "step": "1"}
        answer = prometheus.api("/api/v1/query_range", query=expr, **window)["data"]["result"]
        return [float(v) for _, v in answer[0]["values"]] if answer else []

    def instant(expr: str) -> float:
        answer = prometheus.api("/api/v1/query", query=expr, time=f"{at:.3f}")["data"]["result"]
        return float(answer[0]["value"][1])

    for name in GAUGES:
        expr = f'max({name}{{job="kpi-exporter"}})'
        values = range_values(expr)
        row = parsed.rows[name]
        coordinates = row["points"].split()
        assert len(values) >= 15, (name, values)
        assert int(row["data-points"]) == len(values) == len(coordinates), (name, row)
        assert float(row["current"]) == pytest.approx(instant(expr), rel=1e-5)
        low, mean, high = (float(x) for x in row["range"].split(" / "))
        assert low == pytest.approx(min(values), rel=1e-5)
        assert mean == pytest.approx(sum(values) / len(values), rel=1e-5)
        assert high == pytest.approx(max(values), rel=1e-5)

    rising = parsed.rows["rising_gauge"]
    assert rising["status"] == "below target" and rising["target"] == "above 1000"
    assert rising["trend"].startswith("up")
    # a rising line: each point at or above the one before (smaller y is higher)
    ys = [float(p.split(",")[1]) for p in rising["points"].split()]
    assert ys == sorted(ys, reverse=True) and ys[0] > ys[-1]
    assert parsed.rows["latency_gauge"]["status"] == "on target"
    assert parsed.rows["plain_gauge"]["target"] == "\u2013"  # en dash

    shot = tmp_path / "report.png"
    taken = browse("profile-shot", "--window-size=1400,600", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    pixels = Image.open(shot).convert("RGB")
    blue = sum(
        all(abs(a - b) <= 40 for a, b in zip(pixels.getpixel((x, y)), LINE_BLUE, strict=True))  # type: ignore[arg-type]
        for x in range(pixels.width)
        for y in range(pixels.height)
    )
    assert blue >= 100, "no chart lines drawn"
