"""The on-call layout rules over the generated dashboards of the demo spec, a second small
spec and the kitchen-sink spec: a RED row first, secondary rows collapsed, no duplicate
panel, instant range totals, ratio gauges over their alerts' window, colours from the alerts,
rate units, full grid lines."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from support.dashboards import SMALL, panels_of, small_spec, spec_named

from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.kpis import display_title
from exporter.generation.dashboards.records import rate_period
from exporter.generation.dashboards.red import find_red
from exporter.generation.dashboards.rendering import render_board
from exporter.generation.rules.build import build_rules
from exporter.spec.loading import SpecError, load_spec
from exporter.spec.model import Spec

SPECS = ["demo", "small", "kitchen-sink"]
# Grafana's per-second unit ids (valueFormats/categories.ts, "Throughput" and "Data rate")
RATE_UNITS = {"cps", "ops", "reqps", "rps", "wps", "iops", "Bps", "bps", "rowsps", "recps"}
Json = dict[str, Any]


@pytest.fixture(params=SPECS)
def generated(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Spec, list[Json]]:
    spec = spec_named(request.param, tmp_path)
    return spec, [render_board(b) for b in boards(spec)]


def board_titled(rendered: list[Json], title: str) -> Json:
    (board,) = [b for b in rendered if b["title"] == title]
    return board


def open_panels(board: Json) -> list[Json]:
    """Top-level panels that are not row headers: those of the open first row."""
    return [p for p in board["panels"] if p["type"] != "row"]


def areas(board: Json) -> list[list[Json]]:
    """Panel groups laid out together: the open panels, then each collapsed row's."""
    nested = [p["panels"] for p in board["panels"] if p["type"] == "row" and p["collapsed"]]
    return [open_panels(board), *nested]


def colour_at(panel: Json, value: float) -> str:
    """The colour Grafana gives `value`: that of the last step at or below it."""
    colour = ""
    for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]:
        if step["value"] is None or step["value"] <= value:
            colour = step["color"]
    return colour


RED_OF = {
    # dashboard: (rate counter, errors, histogram) read by its RED row's three stats
    ("demo", "Service Overview"): (
        'sum(rate(http_requests_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))',
        'sum(rate(errors_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))',
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
        '{job=~"$job", instance=~"$instance"}[$__rate_interval])))',
    ),
    ("demo", "Queue Monitoring"): (
        "sum(rate(queue_job_duration_seconds_count"
        '{job=~"$job", instance=~"$instance"}[$__rate_interval]))',
        'sum(rate(queue_failures_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))',
        "histogram_quantile(0.95, sum by (le) (rate(queue_job_duration_seconds_bucket"
        '{job=~"$job", instance=~"$instance"}[$__rate_interval])))',
    ),
    ("small", "API"): (
        'sum(rate(api_calls_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))',
        '1 - ((sum(rate(api_calls_total{job=~"$job", instance=~"$instance"}[10m])) or '
        'vector(0)) / ((sum(rate(api_calls_total{job=~"$job", instance=~"$instance"}[10m])) or '
        'vector(0)) + (sum(rate(api_call_failures_total{job=~"$job", instance=~"$instance"}'
        "[10m])) or vector(0))))",
        "histogram_quantile(0.95, sum by (le) (rate(api_latency_seconds_bucket"
        '{job=~"$job", instance=~"$instance"}[$__rate_interval])))',
    ),
}


class TestRedRow:
    @pytest.mark.parametrize(("which", "title"), list(RED_OF))
    def test_opens_the_dashboard(self, which: str, title: str, tmp_path: Path) -> None:
        board = board_titled([render_board(b) for b in boards(spec_named(which, tmp_path))], title)
        header = board["panels"][0]
        assert header["type"] == "row" and header["collapsed"] is False
        assert header["gridPos"] == {"h": 1, "w": 24, "x": 0, "y": 0}
        red = open_panels(board)
        assert [p["type"] for p in red] == ["stat"] * 3
        assert [t["expr"] for p in red for t in p["targets"]] == list(RED_OF[which, title])
        # one line, the full width, on the first screen (at most 8 grid units down)
        assert {p["gridPos"]["y"] for p in red} == {1}
        assert sum(p["gridPos"]["w"] for p in red) == 24
        assert max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in red) <= 8
        assert all(p["options"]["graphMode"] == "area" for p in red)  # with a sparkline

    def test_units_and_colours(self, tmp_path: Path) -> None:
        demo = board_titled(
            [render_board(b) for b in boards(spec_named("demo", tmp_path))], "Service Overview"
        )
        rate, errors, latency = open_panels(demo)
        units = [p["fieldConfig"]["defaults"]["unit"] for p in (rate, errors, latency)]
        assert units == ["reqps", "cps", "s"]
        # HighErrorRate: errors above 10/s (warning, the only alert on all errors: red);
        # HighResponseTime: p95 above 2 s (warning)
        assert (colour_at(errors, 9.9), colour_at(errors, 10.1)) == ("green", "red")
        assert (colour_at(latency, 1.9), colour_at(latency, 2.1)) == ("green", "red")
        small = board_titled([render_board(b) for b in boards(small_spec(tmp_path))], "API")
        _, ratio, latency = open_panels(small)
        # api_success below 0.95 critical, below 0.99 warning, target 0.995: the error
        # ratio above 0.05 red, above 0.01 orange, above 0.005 yellow
        assert ratio["fieldConfig"]["defaults"]["unit"] == "percentunit"
        assert [colour_at(ratio, v) for v in (0.001, 0.007, 0.02, 0.06)] == [
            "green",
            "yellow",
            "orange",
            "red",
        ]
        assert (colour_at(latency, 0.4), colour_at(latency, 0.6)) == ("green", "red")

    def test_dashboards_without_a_latency_histogram_have_none(self, tmp_path: Path) -> None:
        for which, title in [("demo", "Business KPIs"), ("small", "Capacity")]:
            spec = spec_named(which, tmp_path)
            board = board_titled([render_board(b) for b in boards(spec)], title)
            assert board["panels"][0]["title"] != "Rate, errors, duration", title

    @pytest.mark.parametrize(
        ("names", "expected"),
        [
            # the counter sharing the histogram's first word, the ratio over it (unlisted)
            (
                ["bytes_sent_total", "api_calls_total", "api_latency_seconds"],
                ("api_calls_total", "api_success_ratio", "api_latency_seconds"),
            ),
            # no counter but an error counter: the histogram's count is the rate
            (
                ["api_latency_seconds", "api_call_failures_total"],
                ("api_latency_seconds", "api_call_failures_total", "api_latency_seconds"),
            ),
            (["api_latency_seconds"], ("api_latency_seconds", None, "api_latency_seconds")),
            (["api_calls_total", "inflight"], None),
        ],
    )
    def test_which_kpis(
        self, names: list[str], expected: tuple[str, str | None, str] | None, tmp_path: Path
    ) -> None:
        red = find_red(small_spec(tmp_path), names)
        found = None
        if red is not None:
            errors = None if red.errors is None else red.errors.name
            found = (red.rate.name, errors, red.duration.name)
        assert found == expected


def test_red_row_follows_the_database_variable(tmp_path: Path) -> None:
    """KPIs on several databases: the RED row's rate and latency read the $database filter."""
    text = SMALL.replace(
        "    dsn: sqlite:///app.db\n",
        "    dsn: sqlite:///app.db\n  app2:\n    dsn: sqlite:///b.db\n",
    )
    for table in ("calls", "latency"):
        query = (
            f"    interval: 30s\n    query: SELECT endpoint, {'le, ' if table == 'latency' else ''}"
        )
        before = f"    database: app\n{query}1 AS value FROM {table}\n"
        assert before in text, table
        text = text.replace(before, before.replace("database: app", "database: [app, app2]"))
    path = tmp_path / "two.yaml"
    path.write_text(text)
    spec = load_spec([path]).spec
    rate, _, latency = open_panels(render_board(boards(spec)[0]))
    assert 'database=~"$database"' in rate["targets"][0]["expr"]
    assert 'database=~"$database"' in latency["targets"][0]["expr"]


def test_secondary_rows_are_collapsed(generated: tuple[Spec, list[Json]]) -> None:
    for board in generated[1]:
        rows = [p for p in board["panels"] if p["type"] == "row"]
        assert rows[0]["collapsed"] is False and rows[0]["panels"] == []
        assert all(r["collapsed"] is True and r["panels"] for r in rows[1:]), board["title"]
        # nothing but row headers after the first collapsed row
        first = board["panels"].index(rows[1]) if len(rows) > 1 else len(board["panels"])
        assert all(p["type"] == "row" for p in board["panels"][first:]), board["title"]
        for row in rows[1:]:  # nested panels sit below their header, as Grafana expands them
            assert min(p["gridPos"]["y"] for p in row["panels"]) == row["gridPos"]["y"] + 1


def test_no_panel_duplicates_another(generated: tuple[Spec, list[Json]]) -> None:
    for board in generated[1]:
        seen: dict[tuple[Any, ...], str] = {}
        for panel in panels_of(board):
            key = (panel["type"], tuple((t["expr"], t["instant"]) for t in panel["targets"]))
            assert key not in seen, f"{board['title']}: {panel['title']} = {seen.get(key)}"
            seen[key] = panel["title"]


def test_totals_over_the_range_are_instant(generated: tuple[Spec, list[Json]]) -> None:
    found = 0
    for board in generated[1]:
        for panel in panels_of(board):
            for target in panel["targets"]:
                if "$__range" in target["expr"]:
                    found += 1
                    assert (target["instant"], target["range"]) == (True, False), panel["title"]
            if panel["type"] == "stat" and all(t["instant"] for t in panel["targets"]):
                assert panel["options"]["graphMode"] == "none", panel["title"]
    assert found


def test_ratio_gauges_use_their_alerts_window(generated: tuple[Spec, list[Json]]) -> None:
    """A ratio's gauge (and RED error ratio) reads the window of the recording rule its
    alerts compare, taken from the generated rules."""
    spec, rendered = generated
    records = {r.record: r.expr for g in build_rules(spec).records for r in g.rules}
    for ratio in spec.ratios:
        windows = set(re.findall(r"\[(\w+)\]", records[ratio.record_name]))
        alerts = [
            r.expr
            for g in build_rules(spec).alerts
            for r in g.rules
            if dict(r.labels).get("kpi") == ratio.name
        ]
        # its threshold alerts compare that record (its SLO's burn rates have their own)
        assert sum(ratio.record_name in expr for expr in alerts) == len(ratio.alerts)
        gauges = [
            p
            for b in rendered
            for p in panels_of(b)
            if p["type"] in ("gauge", "stat")
            and any(
                f"rate({ratio.good}{{" in t["expr"] and " / " in t["expr"] for t in p["targets"]
            )
        ]
        assert gauges, ratio.name
        for gauge in gauges:
            ranges = {r for t in gauge["targets"] for r in re.findall(r"\[(\w+)\]", t["expr"])}
            assert ranges == windows, (gauge["title"], ranges, windows)


def test_ratio_colours_follow_alerts_and_target(tmp_path: Path) -> None:
    """The brief's success gauge: red where its alert fires, yellow off target, green on it."""
    demo = [render_board(b) for b in boards(spec_named("demo", tmp_path))]
    (gauge,) = [p for b in demo for p in panels_of(b) if p["title"] == "Generation success"]
    # LowGenerationSuccessRate: below 0.95 (warning, its only alert); target 0.95
    assert [colour_at(gauge, v) for v in (0.5, 0.89, 0.949, 0.95, 1.0)] == [
        "red",
        "red",
        "red",
        "green",
        "green",
    ]
    small = [render_board(b) for b in boards(small_spec(tmp_path))]
    (gauge,) = [p for b in small for p in panels_of(b) if p["title"] == "API success"]
    assert [colour_at(gauge, v) for v in (0.9, 0.97, 0.992, 0.996)] == [
        "red",
        "orange",
        "yellow",
        "green",
    ]


def _is_rate(expr: str) -> bool:
    """`sum[ by (…)] (rate(…[…]))` alone: a per-second rate of counters."""
    return re.fullmatch(r"sum(?: by \([\w, ]*\))? ?\(rate\([^()]*\)\)", expr) is not None


def test_rates_use_rate_units_and_durations_seconds(generated: tuple[Spec, list[Json]]) -> None:
    spec, rendered = generated
    seconds = {spec.metric_name(k) for k in spec.kpis if k.name.endswith("_seconds")}
    rates = 0
    for board in rendered:
        for panel in panels_of(board):
            unit = panel["fieldConfig"]["defaults"]["unit"]
            exprs = [t["expr"] for t in panel["targets"]]
            if panel["type"] != "heatmap" and all(_is_rate(e) for e in exprs):
                rates += 1
                assert unit in RATE_UNITS or re.fullmatch(r"(suffix|count):\w*/s", unit), panel[
                    "title"
                ]
            quantiles = [re.search(r"rate\((\w+)_bucket", e) for e in exprs]
            if all(quantiles) and {q.group(1) for q in quantiles if q} <= seconds:
                assert unit == "s", panel["title"]
    assert rates


# every record of the demo and kitchen-sink specs, and the unit its panel must have
RECORD_UNITS = {
    "job:token_spend:rate1h": "count:/h",  # sum(rate(…)) * 3600: tokens per hour
    "job:token_cost_usd:rate1h": "suffix:USD/h",  # … * 3600 * 0.000002: USD per hour
    "job:transaction_value_usd:avg_rate5m": "currencyUSD",  # a rate over a rate: USD
    "job_queue_name:queue_job_duration_seconds:avg_rate5m": "s",
    "job_queue_name:queue_job_duration_seconds:p95_rate5m": "s",
    "job_route:http_request_duration_seconds:p95_rate5m": "s",
    "job:active_users:max_over_time1d": "short",
    "job:up:avg_percent": "percent",
    "job:shop_orders:rate5m": "cps",  # a per-second rate of a unitless counter
    "step:shop_checkout_seconds:p99_rate5m": "s",
    "job:shop_refunds_usd:sum_rate1h": "suffix:USD/h",
    "instance:shop_queue_depth:max": "short",
    "job:shop_refund_share:ratio_percent": "percent",
}


@pytest.mark.parametrize("which", ["demo", "kitchen-sink"])
def test_recorded_rates_use_rate_units(which: str, tmp_path: Path) -> None:
    spec = spec_named(which, tmp_path)
    found = {
        p["targets"][0]["expr"].split("{")[0]: p["fieldConfig"]["defaults"]["unit"]
        for b in boards(spec)
        for p in panels_of(render_board(b))
        if len(p["targets"]) == 1 and p["targets"][0]["expr"].split("{")[0] in RECORD_UNITS
    }
    assert found == {r.record: RECORD_UNITS[r.record] for r in spec.records}


@pytest.mark.parametrize(
    ("expr", "period"),
    [
        ("sum(rate(x_total[5m]))", "s"),
        ('sum(rate(x_total{path="/a/b"}[5m])) # per second / not per hour', "s"),
        ("sum by (job) (irate(x_total[1m])) * 60", "min"),
        ("sum(rate(x_total[1h])) * 3600 * 0.002", "h"),
        ("rate(x_total[1d]) * 86400", "d"),
        ("sum(rate(x_total[5m])) / sum(rate(y_total[5m]))", None),  # a ratio of rates
        ("sum(increase(x_total[1h]))", None),
        ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", None),
        ("rate(x_total[5m]) * 3600 * 60", None),  # per what, cannot tell
        ("max(x)", None),
    ],
)
def test_record_rate_period(expr: str, period: str | None) -> None:
    assert rate_period(expr) == period


@pytest.mark.parametrize(
    ("kpi", "unit"),
    [
        ("http_requests_total", "reqps"),  # a request counter by name
        ("errors_total", "cps"),
        ("revenue_usd_total", "suffix:USD/s"),
        ("logins_total", "count:logins/s"),  # kitchen sink: unit logins
        ("refunds_total", "suffix:USD/s"),
        ("bytes_sent_total", "Bps"),  # small spec: unit bytes
    ],
)
def test_counter_rate_units(kpi: str, unit: str, tmp_path: Path) -> None:
    for which in SPECS:
        spec = spec_named(which, tmp_path)
        if kpi in {k.name for k in spec.kpis}:
            title = f"{display_title(kpi)} per second"
            (panel,) = [
                p for b in boards(spec) for p in panels_of(render_board(b)) if p["title"] == title
            ]
            assert panel["fieldConfig"]["defaults"]["unit"] == unit
            return
    raise AssertionError(f"no spec has {kpi}")


def test_no_empty_half_rows(generated: tuple[Spec, list[Json]]) -> None:
    for board in generated[1]:
        for area in areas(board):
            widths: dict[int, int] = defaultdict(int)
            for panel in area:
                widths[panel["gridPos"]["y"]] += panel["gridPos"]["w"]
            assert set(widths.values()) <= {24}, (board["title"], dict(widths))


def test_panels_do_not_overlap(generated: tuple[Spec, list[Json]]) -> None:
    """Within the open area and within each collapsed row (as Grafana expands it)."""
    for board in generated[1]:
        for area in [board["panels"], *areas(board)[1:]]:
            cells: set[tuple[int, int]] = set()
            for panel in area:
                g = panel["gridPos"]
                mine = {
                    (x, y)
                    for x in range(g["x"], g["x"] + g["w"])
                    for y in range(g["y"], g["y"] + g["h"])
                }
                assert not cells & mine, f"{board['title']} / {panel['title']} overlaps"
                cells |= mine


class TestRedHint:
    """A dashboard's `red` key: the KPIs named, or no RED row; wrong kinds fail the load."""

    def spec_with(self, tmp_path: Path, red: str) -> Spec:
        text = SMALL.replace("  - title: API\n", f"  - title: API\n    red: {red}\n")
        assert text != SMALL
        path = tmp_path / "hinted.yaml"
        path.write_text(text)
        return load_spec([path]).spec

    def test_named_kpis_replace_the_pick(self, tmp_path: Path) -> None:
        spec = self.spec_with(
            tmp_path, "{duration: api_latency_seconds, errors: api_call_failures_total}"
        )
        red = open_panels(render_board(boards(spec)[0]))
        assert [p["title"] for p in red] == [
            "Request rate · API calls",  # not named: still picked by the rule
            "Error rate · API call failures",
            "p95 latency · API latency",
        ]
        assert "api_call_failures_total" in red[1]["targets"][0]["expr"]
        spec = self.spec_with(
            tmp_path, "{duration: api_latency_seconds, rate: api_latency_seconds}"
        )
        rate = open_panels(render_board(boards(spec)[0]))[0]
        assert "api_latency_seconds_count" in rate["targets"][0]["expr"]
        assert (rate["title"], rate["fieldConfig"]["defaults"]["unit"]) == (
            "Request rate · API latency (count)",
            "ops",
        )

    def test_false_means_no_red_row(self, tmp_path: Path) -> None:
        board = render_board(boards(self.spec_with(tmp_path, "false"))[0])
        assert [p["title"] for p in board["panels"] if p["type"] == "row"] == ["Calls", "Latency"]
        assert board["panels"][0]["collapsed"] is False

    @pytest.mark.parametrize(
        ("red", "message"),
        [
            (
                "{duration: api_calls_total}",
                "dashboards[0].red.duration: 'api_calls_total' is a counter: name a histogram KPI",
            ),
            (
                "{duration: api_latency_seconds, errors: nope}",
                "dashboards[0].red.errors: 'nope' is not in this spec: name a counter KPI or a "
                "ratio",
            ),
            (
                "{duration: api_latency_seconds, rate: api_success_ratio}",
                "dashboards[0].red.rate: 'api_success_ratio' is a ratio: name a counter or "
                "histogram KPI",
            ),
        ],
    )
    def test_wrong_kinds_name_file_line_and_field(
        self, tmp_path: Path, red: str, message: str
    ) -> None:
        with pytest.raises(SpecError) as caught:
            self.spec_with(tmp_path, red)
        found = [str(p) for p in caught.value.problems]
        line = SMALL.splitlines().index("  - title: API") + 2  # the red: line, 1-based
        assert any(message in p for p in found), found
        assert any(p.startswith(f"{tmp_path}/hinted.yaml:{line}:") for p in found), found
