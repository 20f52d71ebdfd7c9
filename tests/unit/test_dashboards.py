"""Generated Grafana dashboards: panels by KPI type, the dashboard linter's rules, the Grafana
SDK decoder and the committed demo files."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT
from support.dashboards import KITCHEN_SINK, demo_spec, kitchen_sink, panels_of, placed

from exporter.conventions import SelfMetric
from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.files import render, write
from exporter.generation.dashboards.model import SCHEMA_VERSION
from exporter.generation.dashboards.records import record_labels, record_title, record_unit
from exporter.generation.dashboards.rendering import render_board
from exporter.generation.dashboards.thresholds import Bound, quantile_threshold, steps_for
from exporter.spec.model import FreeRecord


def steps_of(panel: dict[str, Any]) -> list[tuple[Any, str]]:
    """A panel's threshold steps as (value, colour)."""
    return [
        (s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<duration>\[[^\]]*\])
    | (?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<punct>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>])
    )""",
    re.VERBOSE,
)


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


_OPERATORS = {"and", "or", "unless", "atan2"}


@dataclass(frozen=True)
class Selector:
    """A vector selector found in a query: metric, matcher text, range, enclosing function."""

    metric: str
    matchers: str
    range: str | None
    function: str | None


def tokens(expr: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        match = _TOKEN.match(expr, pos)
        assert match, f"cannot read {expr[pos:]!r} in {expr!r}"
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        pos = match.end()
    return found


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of a PromQL expression, with the function it is an argument of."""
    items = tokens(expr)
    result: list[Selector] = []
    calls: list[str | None] = []  # the function (or None) of each open parenthesis
    i = 0
    while i < len(items):
        kind, text = items[i]
        nxt = items[i + 1][1] if i + 1 < len(items) else ""
        if kind == "ident" and text in _KEYWORDS:
            if nxt == "(":  # a label list: skip it
                i = next(j for j in range(i, len(items)) if items[j][1] == ")") + 1
                continue
            i += 1
            continue
        if kind == "ident" and nxt in ("by", "without"):  # sum by (a) (...): skip the list
            close = next(j for j in range(i, len(items)) if items[j][1] == ")")
            items[i + 1 : close + 1] = []
            nxt = items[i + 1][1] if i + 1 < len(items) else ""
        if kind == "ident" and nxt == "(":
            calls.append(text)
            i += 2
            continue
        if text == "(":
            calls.append(None)
        elif text == ")":
            calls.pop()
        elif kind == "ident" and text not in _OPERATORS:
            matchers, j = "", i + 1
            if nxt == "{":
                close = next(k for k in range(j, len(items)) if items[k][1] == "}")
                matchers = "".join(t for _, t in items[j + 1 : close])
                j = close + 1
            rng = None
            if j < len(items) and items[j][0] == "duration":
                rng, j = items[j][1][1:-1], j + 1
            result.append(Selector(text, matchers, rng, calls[-1] if calls else None))
            i = j
            continue
        i += 1
    assert not calls, f"unbalanced parentheses in {expr!r}"
    return result


class TestPromqlReader:
    def test_reads_selectors_and_their_functions(self) -> None:
        found = selectors(
            'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job=~"$job"}'
            "[$__rate_interval]))) / on (job) group_left b + sum(increase(c_total[1h])) or "
            "vector(0)"
        )
        assert found == [
            Selector("a_bucket", 'job=~"$job"', "$__rate_interval", "rate"),
            Selector("b", "", None, None),
            Selector("c_total", "", "1h", "increase"),
        ]


class TestPanelsByType:
    def test_every_kpi_and_ratio_is_on_some_dashboard(self, tmp_path: Path) -> None:
        spec = kitchen_sink(tmp_path)
        text = json.dumps([render_board(b) for b in boards(spec)])
        for kpi in spec.kpis:
            assert spec.metric_name(kpi) in text, kpi.name
        for ratio in spec.ratios:
            assert ratio.record_name in text, ratio.name
        for record in spec.records:
            assert record.record in text, record.record
        titles = [b.title for b in boards(spec)]
        assert titles == ["Shop / Overview!", "Same uid", "All KPIs", "KPI exporter health"]

    def test_no_all_kpis_dashboard_when_everything_is_listed(self) -> None:
        spec = demo_spec()
        listed = {n for d in spec.dashboards for r in d.rows for n in r.kpis}
        named = {k.name for k in spec.kpis} | {r.name for r in spec.ratios}
        assert listed == named | {r.record for r in spec.records}
        assert "All KPIs" not in [b.title for b in boards(spec)]

    @pytest.mark.parametrize(
        ("dashboard", "row", "record", "title", "unit", "legend"),
        [
            (
                "Service Overview",
                "Users",
                "job:active_users:max_over_time1d",
                "Active users (max_over_time1d)",
                "short",
                "{{job}}",
            ),
            (
                "Service Overview",
                "Users",
                "job:up:avg_percent",
                "Up (avg_percent)",
                "percent",
                "{{job}}",
            ),
            (
                "Service Overview",
                "Traffic",
                "job_route:http_request_duration_seconds:p95_rate5m",
                "HTTP request duration (p95_rate5m) by route",
                "s",
                "{{route}}",
            ),
            (
                "Business KPIs",
                "Generation",
                "job:token_spend:rate1h",
                "Token spend (rate1h)",
                "count:/h",  # a rate times 3600: per hour
                "{{model}} {{type}}",
            ),
            (
                "Business KPIs",
                "Generation",
                "job:token_cost_usd:rate1h",
                "Token cost USD (rate1h)",
                "suffix:USD/h",
                "{{model}} {{type}}",
            ),
            (
                "Business KPIs",
                "Revenue",
                "job:transaction_value_usd:avg_rate5m",
                "Transaction value USD (avg_rate5m)",
                "currencyUSD",
                "{{currency}}",
            ),
            (
                "Queue Monitoring",
                "Jobs",
                "job_queue_name:queue_job_duration_seconds:avg_rate5m",
                "Queue job duration (avg_rate5m) by queue_name",
                "s",
                "{{queue_name}}",
            ),
            (
                "Queue Monitoring",
                "Jobs",
                "job_queue_name:queue_job_duration_seconds:p95_rate5m",
                "Queue job duration (p95_rate5m) by queue_name",
                "s",
                "{{queue_name}}",
            ),
        ],
    )
    def test_demo_shows_the_brief_derived_kpis(
        self, dashboard: str, row: str, record: str, title: str, unit: str, legend: str
    ) -> None:
        """The brief's derived panels, where its dashboards put them."""
        spec = demo_spec()
        (board,) = [render_board(b) for b in boards(spec) if b.title == dashboard]
        found = [p for r, p in placed(board) if r == row and p["title"] == title]
        assert len(found) == 1, [p["title"] for p in panels_of(board)]
        (target,) = found[0]["targets"]
        assert target["expr"].split("{")[0] == record
        assert (found[0]["fieldConfig"]["defaults"]["unit"], target["legendFormat"]) == (
            unit,
            legend,
        )
        (help_text,) = [r.help for r in spec.records if r.record == record]
        assert found[0]["description"].startswith(help_text)

    def test_uids_from_spec_or_title_slug_and_never_twice(self, tmp_path: Path) -> None:
        uids = [b.uid for b in boards(kitchen_sink(tmp_path))]
        assert uids == [
            "shop-overview",
            "kpi-exporter-health-2",
            "kpi-exporter-all-kpis",
            "kpi-exporter-health",
        ]

    def test_panel_kinds_and_queries(self, tmp_path: Path) -> None:
        spec = kitchen_sink(tmp_path)
        by_title = {p["title"]: p for b in boards(spec) for p in panels_of(render_board(b))}
        # gauge: stat (sparkline) and timeseries with a legend by label
        stat = by_title["Queue depth"]
        assert stat["type"] == "stat" and stat["options"]["graphMode"] == "area"
        assert by_title["Queue depth over time"]["targets"][0]["legendFormat"] == "{{queue}}"
        # counter: increase over the range, rate over $__rate_interval
        total = by_title["Orders (range total)"]
        assert total["type"] == "table" and total["targets"][0]["format"] == "table"
        assert "[$__range]" in total["targets"][0]["expr"] and total["targets"][0]["instant"]
        rate = by_title["Orders per second"]
        assert rate["type"] == "timeseries"
        assert all("[$__rate_interval]" in t["expr"] for t in rate["targets"])
        assert [t["legendFormat"] for t in rate["targets"]] == [
            "total",
            "{{service}} {{team}}",
            "{{status}}",
        ]
        narrowed = by_title['Orders per second (status=fai"led)']
        assert 'status="fai\\"led"' in narrowed["targets"][0]["expr"]
        bars = by_title["Refunds (range total)"]
        assert bars["type"] == "bargauge" and len(bars["targets"]) == 2
        assert bars["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
        assert "Logins (range total)" not in by_title  # panel: timeseries drops the headline
        # histogram: quantiles, heatmap of buckets, p95 by label
        quantiles = by_title["Checkout p50 / p95 / p99"]
        assert [t["legendFormat"] for t in quantiles["targets"]] == ["p50", "p95", "p99"]
        assert all("histogram_quantile(0." in t["expr"] for t in quantiles["targets"])
        heatmap = by_title["Checkout distribution"]
        assert heatmap["type"] == "heatmap" and heatmap["targets"][0]["format"] == "heatmap"
        assert heatmap["options"]["calculate"] is False
        assert "sum by (le, step)" in by_title["Checkout p95 by step"]["targets"][0]["expr"]
        assert by_title["Checkout p95"]["type"] == "stat"
        # ratio: gauge in percentunit 0..1 and the recording rule's trend
        gauge = by_title["Order success"]
        defaults = gauge["fieldConfig"]["defaults"]
        assert gauge["type"] == "gauge"
        assert (defaults["unit"], defaults["min"], defaults["max"]) == ("percentunit", 0, 1)
        trend = by_title["Order success over time"]["targets"][0]["expr"]
        assert trend == 'job:order_success:ratio_rate5m{job=~"$job"}'
        assert by_title["Refund share"]["type"] == "stat"
        # gauge with panel: heatmap computes the heatmap from the series
        assert by_title["Cart size over time"]["options"]["calculate"] is True

    def test_record_panels(self, tmp_path: Path) -> None:
        spec = kitchen_sink(tmp_path)
        same_uid = render_board(boards(spec)[1])
        by_title = {p["title"]: p for p in panels_of(same_uid)}

        def shown(title: str) -> tuple[str, str, str, str]:
            panel = by_title[title]
            target = panel["targets"][0]
            unit = panel["fieldConfig"]["defaults"]["unit"]
            return panel["type"], target["expr"], target["legendFormat"], unit

        # without (instance): the KPI's labels stay; job and constant labels are not in the legend
        assert shown("Shop orders (rate5m)") == (
            "timeseries",
            'job:shop_orders:rate5m{job=~"$job"}',
            "{{status}}",
            "cps",
        )
        # by (le, step) under histogram_quantile: only step stays, job is aggregated away
        assert shown("Shop checkout (p99_rate5m) by step") == (
            "timeseries",
            "step:shop_checkout_seconds:p99_rate5m",
            "{{step}}",
            "s",
        )
        # by (job): nothing but job and the rule's own static label
        assert shown("Shop refunds USD (sum_rate1h)") == (
            "timeseries",
            'job:shop_refunds_usd:sum_rate1h{job=~"$job"}',
            "{{job}}",
            "suffix:USD/h",
        )
        # a record that keeps instance follows the instance variable too
        assert shown("Shop queue depth (max) by instance") == (
            "timeseries",
            'instance:shop_queue_depth:max{job=~"$job", instance=~"$instance"}',
            "{{instance}} {{queue}}",
            "short",
        )
        descriptions = {t: p["description"] for t, p in by_title.items()}
        assert descriptions["Shop orders (rate5m)"] == (
            "Orders per second. The recording rule job:shop_orders:rate5m."
        )
        assert "job label away" in descriptions["Shop checkout (p99_rate5m) by step"]
        assert "job label away" not in descriptions["Shop orders (rate5m)"]
        # records sit two to a line, under the KPIs of the row before
        grid = [by_title[t]["gridPos"] for t in by_title if "(" in t and "Shop" in t]
        assert [(g["x"], g["w"]) for g in grid] == [(0, 12), (12, 12), (0, 12), (12, 12)]
        assert grid[0]["y"] == grid[1]["y"] < grid[2]["y"] == grid[3]["y"]
        # a record no dashboard lists goes to All KPIs; its labels cannot be read: {{job}}
        all_kpis = {p["title"]: p for p in panels_of(render_board(boards(spec)[2]))}
        share = all_kpis["Shop refund share (ratio_percent)"]
        assert share["targets"][0]["legendFormat"] == "{{job}}"
        assert share["targets"][0]["expr"] == 'job:shop_refund_share:ratio_percent{job=~"$job"}'
        assert share["fieldConfig"]["defaults"]["unit"] == "percent"

    def test_slo_row(self, tmp_path: Path) -> None:
        board = render_board(boards(kitchen_sink(tmp_path))[0])
        rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
        assert rows == ["Orders", "SLO: Order success"]
        slo = {p["title"]: p for p in panels_of(board) if p["title"].startswith("Order success ")}
        objective = slo["Order success SLO objective"]["targets"][0]["expr"]
        assert objective == 'label_replace(vector(0.995), "slo", "order_success_ratio", "", "")'
        sli = slo["Order success SLI (4w)"]["targets"][0]["expr"]
        assert sli == '1 - job:order_success:error_ratio_rate4w{job=~"$job"}'
        budget = slo["Order success error budget remaining"]["targets"][0]["expr"]
        assert budget == 'job:order_success:error_budget_remaining{job=~"$job"}'
        burn = slo["Order success burn rate"]
        assert [t["expr"] for t in burn["targets"]] == [
            'job:order_success:error_ratio_rate1h{job=~"$job"} / 0.005',
            'job:order_success:error_ratio_rate6h{job=~"$job"} / 0.005',
        ]
        # 2% of a 28-day budget in 6h is a burn rate of 5.6; a 3-day ticket burns 0.93
        steps = burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["value"], s["color"]) for s in steps] == [
            (None, "green"),
            (pytest.approx(28 / 3 * 0.1), "orange"),
            (pytest.approx(0.05 * 28 * 4), "red"),
        ]

    @pytest.mark.parametrize("which", ["demo", "kitchen-sink"])
    def test_recording_rules_used_are_generated(self, which: str, tmp_path: Path) -> None:
        """Every recorded series a panel reads is one the rules generator records."""
        from exporter.generation.rules.build import build_rules

        spec = demo_spec() if which == "demo" else kitchen_sink(tmp_path)
        recorded = {r.record for g in build_rules(spec).records for r in g.rules}
        used = {
            sel.metric
            for board in boards(spec)
            for panel in panels_of(render_board(board))
            for target in panel["targets"]
            for sel in selectors(target["expr"])
            if ":" in sel.metric
        }
        assert used and used <= recorded, used - recorded

    def test_health_dashboard_covers_the_self_metrics(self) -> None:
        health = render_board(boards(demo_spec())[-1])
        text = json.dumps(health)
        for name in (
            "up{",
            SelfMetric.KPI_UP,
            SelfMetric.LAST_SUCCESS,
            f"{SelfMetric.QUERY_DURATION}_bucket",
            SelfMetric.QUERY_ERRORS,
            SelfMetric.DATABASE_UP,
            SelfMetric.SERIES,
            SelfMetric.RELOAD_OK,
        ):
            assert name in text, name


S = ("job", "instance", "service", "team")  # what every shop KPI series carries


class TestRecordLabels:
    """The labels a record keeps, read from its PromQL; None where a plain reading cannot tell.
    (The end-to-end test compares the demo records' reading with Prometheus' own series.)"""

    @pytest.mark.parametrize(
        ("expr", "labels"),
        [
            (
                "sum without (instance) (rate(shop_orders_total[5m]))",
                ("job", "service", "team", "status"),
            ),
            (
                "sum(rate(shop_orders_total[5m])) without (instance, team)",
                ("job", "service", "status"),
            ),
            ("sum by (status, job) (rate(shop_orders_total[5m]))", ("status", "job")),
            ("sum(rate(shop_orders_total[5m])) by (job)", ("job",)),
            ("sum(rate(shop_orders_total[5m]))", ()),
            ("rate(shop_orders_total[5m]) * 60", (*S, "status")),
            ("max by (job, nope) (shop_queue_depth)", ("job",)),
            ("max by (job) (sum by (queue) (shop_queue_depth))", ()),
            ("sum by (a) (x) / sum by (a) (y)", ("a",)),
            ("sum by (a) (x) / sum by (b) (y)", None),
            (
                "histogram_quantile(0.9, sum by (le, step) "
                "(rate(shop_checkout_seconds_bucket[5m])))",
                ("step",),
            ),
            (
                "histogram_quantile(0.9, sum without (instance) "
                "(rate(shop_page_bytes_bucket[5m])))",
                ("job", "service", "team"),
            ),
            (
                "sum without (instance) (rate(shop_checkout_seconds_sum[5m]))\n"
                "/ sum without (instance) (rate(shop_checkout_seconds_count[5m]))",
                ("job", "service", "team", "step"),
            ),
            ("avg by (job) (up) * 100", ("job",)),
            (
                "min without (instance) (job:order_success:ratio_rate5m)",
                ("job", "service", "team", "status"),
            ),
            # braces, brackets and `by (...)` inside strings and comments are not PromQL
            (
                'sum by (job) (shop_queue_depth{queue="by (queue) {x}"}) # without (job)',
                ("job",),
            ),
            ("sum without (instance) (unknown_metric)", None),
            ('sum without (instance) ({__name__="shop_queue_depth"})', None),
            ("sum by (job) (x) / on (job) group_left sum by (job) (y)", None),
            ('label_replace(shop_queue_depth, "a", "$1", "queue", "(.*)")', None),
            ("topk by (job) (3, shop_queue_depth)", None),
            ("sum(x) or vector(0)", None),
        ],
    )
    def test_reading(self, tmp_path: Path, expr: str, labels: tuple[str, ...] | None) -> None:
        spec = kitchen_sink(tmp_path)
        assert record_labels(spec, FreeRecord(record="x:y:z", expr=expr)) == labels

    def test_static_labels_and_records_of_records(self, tmp_path: Path) -> None:
        spec = kitchen_sink(tmp_path)
        refunds = FreeRecord(
            record="x:y:z", expr="sum by (job) (rate(shop_refunds_total[1h]))", labels={"b": "1"}
        )
        assert record_labels(spec, refunds) == ("job", "b")
        # a record over a record of this spec reads that record's labels
        over = FreeRecord(record="x:y:z", expr="max without (status) (job:shop_orders:rate5m)")
        assert record_labels(spec, over) == ("job", "service", "team")

    @pytest.mark.parametrize(
        ("name", "unit", "title"),
        [
            ("job:token_spend:rate1h", "short", "Token spend (rate1h)"),
            ("job:token_cost_usd:rate1h", "currencyUSD", "Token cost USD (rate1h)"),
            (
                "job_route:http_request_duration_seconds:p95_rate5m",
                "s",
                "HTTP request duration (p95_rate5m) by route",
            ),
            ("job:up:avg_percent", "percent", "Up (avg_percent)"),
            ("job:checkout:error_ratio_rate1h", "percentunit", "Checkout (error_ratio_rate1h)"),
            ("job:page_bytes:max", "bytes", "Page (max)"),
            ("queue:depth", "short", "Depth by queue"),
        ],
    )
    def test_unit_and_title_from_the_name(self, name: str, unit: str, title: str) -> None:
        assert (record_unit(name), record_title(name)) == (unit, title)


class TestThresholds:
    def test_above_warning_then_critical(self) -> None:
        bounds = [Bound(10, True, "orange"), Bound(20, True, "red")]
        assert steps_for(bounds) == ((None, "green"), (10, "orange"), (20, "red"))

    def test_below_bounds_colour_the_low_side(self) -> None:
        # a warning alert with no critical one beside it is the panel's red (the brief's
        # generation success gauge: red below the alert, yellow below the target)
        bounds = [Bound(0.9, False, "orange"), Bound(0.95, False, "yellow")]
        assert steps_for(bounds) == ((None, "red"), (0.9, "yellow"), (0.95, "green"))

    def test_mixed_directions_take_the_worst(self) -> None:
        bounds = [Bound(1, False, "red"), Bound(5, True, "orange"), Bound(3, True, "red")]
        assert steps_for(bounds) == ((None, "red"), (1, "green"), (3, "red"))

    def test_panels_mirror_alerts_and_targets(self, tmp_path: Path) -> None:
        spec = kitchen_sink(tmp_path)
        by_title = {p["title"]: p for b in boards(spec) for p in panels_of(render_board(b))}

        def steps(title: str) -> list[tuple[Any, str]]:
            return steps_of(by_title[title])

        # target below 50 (yellow above), warning above 100, critical above 500
        assert steps("Queue depth") == [
            (None, "green"),
            (50, "yellow"),
            (100, "orange"),
            (500, "red"),
        ]
        # rate alerts on the rate panel; an increase of 60 in 10m is 0.1/s; target 2/s
        # below 0.1/s only off target; above it critical (an increase of 60 over 10m)
        assert steps("Orders per second") == [(None, "yellow"), (0.1, "red")]
        assert steps('Orders per second (status=fai"led)') == [(None, "green"), (1, "red")]
        assert steps("Order success") == [(None, "red"), (0.9, "yellow"), (0.95, "green")]
        assert steps("Conversion ratio now over time") == [(None, "red"), (0.2, "green")]


SLOW = "sum by (le) (rate(shop_checkout_seconds_bucket[5m]))"


ONE_STEP = SLOW.replace("bucket", 'bucket{step="pay"}')


BY_REGEX = SLOW.replace("bucket", 'bucket{job=~"k.*"}')


class TestQuantileAlerts:
    """Free-form alerts `histogram_quantile(Q, …) > N` on a histogram KPI draw N on its panels."""

    @pytest.mark.parametrize(
        ("expr", "reading"),
        [
            (
                "histogram_quantile(0.95, sum by (le, step) "
                '(rate(shop_checkout_seconds_bucket{job="kpi-exporter"}[5m]))) > 2',
                (0.95, True, 2.0),
            ),
            (f"histogram_quantile(0.9,\n  {SLOW} # p90 (fast)\n) < 0.5", (0.9, False, 0.5)),
            (
                "histogram_quantile(.99, rate(shop_checkout_seconds_bucket[5m])) >= 1e1",
                (0.99, True, 10.0),
            ),
            (f"histogram_quantile(0.95, {SLOW}) > bool 2", None),
            (f"(histogram_quantile(0.95, {SLOW}) > 2) and on () vector(1)", None),
            # a traffic guard after `and` only silences quiet series: the line is still 2
            (f"histogram_quantile(0.95, {SLOW}) > 2 and {SLOW} > 0", (0.95, True, 2.0)),
            (
                f"histogram_quantile(0.95, {SLOW}) > 2\nand sum(rate("
                'shop_checkout_seconds_bucket{le="+Inf"}[5m])) * 300 >= 100',
                (0.95, True, 2.0),
            ),
            (f"histogram_quantile(0.95, {SLOW}) > 2 or {SLOW} > 0", None),
            (f"histogram_quantile(0.95, {SLOW}) / 2 > 1", None),
            (f"histogram_quantile(1.5, {SLOW}) > 2", None),
            (f"histogram_quantile(0.95, {SLOW.replace('[5m]', '[5m] offset 1h')}) > 2", None),
            (f"histogram_quantile(0.95, {ONE_STEP}) > 2", None),
            (f"histogram_quantile(0.95, {BY_REGEX}) > 2", None),
            (
                f"histogram_quantile(0.95, {SLOW.replace('checkout_seconds', 'page_bytes')}) > 2",
                None,
            ),
            (
                "histogram_quantile(0.95, sum by (le) (rate(shop_checkout_seconds_bucket[5m]) "
                "/ ignoring (le) group_left rate(shop_checkout_seconds_count[5m]))) > 2",
                None,
            ),
        ],
    )
    def test_reading(
        self, tmp_path: Path, expr: str, reading: tuple[float, bool, float] | None
    ) -> None:
        spec = kitchen_sink(tmp_path)
        assert quantile_threshold(spec, spec.kpi("checkout_seconds"), expr) == reading

    def test_thresholds_on_the_quantile_panels(self, tmp_path: Path) -> None:
        spec = kitchen_sink(tmp_path)
        by_title = {p["title"]: p for b in boards(spec) for p in panels_of(render_board(b))}

        def steps(title: str) -> list[tuple[Any, str]]:
            return steps_of(by_title[title])

        # SlowCheckout (p95 > 2, warning) on the p95 panels, red there as their most severe
        # alert; VerySlowCheckout (p99 >= 5, critical) joins it on the p50/p95/p99 panel,
        # where the warning is orange; SlowPaymentStep (one step) on none
        assert steps("Checkout p95") == [(None, "green"), (2, "red")]
        assert steps("Checkout p95 by step") == [(None, "green"), (2, "red")]
        assert steps("Checkout p50 / p95 / p99") == [(None, "green"), (2, "orange"), (5, "red")]
        quantiles = by_title["Checkout p50 / p95 / p99"]
        assert quantiles["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
        assert quantiles["description"].endswith(
            "Thresholds: warning above 2 (p95 alert SlowCheckout), "
            "critical above 5 (p99 alert VerySlowCheckout)."
        )
        assert "SlowPaymentStep" not in json.dumps(by_title)
        # no alert names page_bytes: only its target (p95 below 100 kB) colours it
        assert steps("Page p50 / p95 / p99") == [(None, "green"), (100000, "yellow")]

    def test_demo_high_response_time(self) -> None:
        board = render_board(boards(demo_spec())[0])
        panel = next(
            p for p in panels_of(board) if p["title"] == "HTTP request duration p95 by route"
        )
        assert steps_of(panel) == [(None, "green"), (2, "red")]
        assert "(p95 alert HighResponseTime)" in panel["description"]


class TestLinterRules:
    """Grafana's dashboard linter rules, reimplemented (the Go tool cannot be installed)."""

    def test_dashboard_settings(self, rendered: list[dict[str, Any]]) -> None:
        for board in rendered:
            assert board["schemaVersion"] == SCHEMA_VERSION
            assert board["editable"] is False
            assert "__inputs" not in board and "__requires" not in board
            assert board["title"] and board["uid"] and len(board["uid"]) <= 40

    def test_template_variables(self, rendered: list[dict[str, Any]]) -> None:
        for board in rendered:
            variables = {v["name"]: v for v in board["templating"]["list"]}
            sources = [v for v in variables.values() if v["type"] == "datasource"]
            assert len(sources) == 1
            assert sources[0]["name"] == "datasource" and sources[0]["label"] == "Data source"
            assert sources[0]["query"] == "prometheus"
            for name in ("job", "instance"):
                var = variables[name]
                assert var["type"] == "query" and var["label"] == name.title()
                assert var["datasource"]["uid"] in ("$datasource", "${datasource}")
                assert var["multi"] is True and var["includeAll"] is True
                assert var["allValue"] == ".+"
                assert var["refresh"] == 2  # on time range change
                query = var["query"]["query"]
                assert query.startswith("label_values(") and query.endswith(f", {name})")
            assert '{job=~"$job"}' in variables["instance"]["query"]["query"]

    def test_panels(self, rendered: list[dict[str, Any]]) -> None:
        units = sdk_units()
        for board in rendered:
            ids = [p["id"] for p in board["panels"]]
            assert len(ids) == len(set(ids)), board["title"]
            for panel in panels_of(board):
                where = f"{board['title']} / {panel['title']}"
                assert panel["type"] != "graph", where
                assert panel["type"] in (
                    "stat",
                    "timeseries",
                    "gauge",
                    "bargauge",
                    "table",
                    "heatmap",
                ), where
                assert panel["title"].strip() and panel["description"].strip(), where
                assert panel["datasource"]["uid"] == "${datasource}", where
                unit = panel["fieldConfig"]["defaults"]["unit"]
                # Grafana's custom units: "suffix:USD/h", "count:tokens/s"
                assert unit in units or re.fullmatch(r"(suffix|count):\w*/(s|min|h|d)", unit), where
                refs = [t["refId"] for t in panel["targets"]]
                assert refs and len(refs) == len(set(refs)), where
                for target in panel["targets"]:
                    assert target["datasource"]["uid"] == "${datasource}", where
                    assert target["expr"].strip(), where
                grid = panel["gridPos"]
                assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where

    def test_selectors_filter_on_job_and_instance(self, rendered: list[dict[str, Any]]) -> None:
        for board in rendered:
            for panel in panels_of(board):
                for target in panel["targets"]:
                    for sel in selectors(target["expr"]):
                        where = f"{panel['title']}: {target['expr']}"
                        if "aggregates the job label away" not in panel["description"]:
                            assert 'job=~"$job"' in sel.matchers, where
                        else:  # the panel says why: a record `by (route)` has no job label
                            assert ":" in sel.metric and "job" not in sel.matchers, where
                        if ":" not in sel.metric:  # recording rules aggregate instance away
                            assert 'instance=~"$instance"' in sel.matchers, where

    def test_rate_interval_and_counters(self, rendered: list[dict[str, Any]]) -> None:
        for board in rendered:
            for panel in panels_of(board):
                slo_period = (
                    panel["title"].startswith("SLO")
                    or "SLI (" in panel["title"]
                    or ("error budget" in panel["title"])
                )
                for target in panel["targets"]:
                    where = f"{panel['title']}: {target['expr']}"
                    for sel in selectors(target["expr"]):
                        ratio_window = (
                            panel["type"] in ("gauge", "stat")
                            and " / " in target["expr"]
                            and re.fullmatch(r"\d+[mh]", sel.range or "") is not None
                        )
                        if sel.function in ("rate", "irate"):
                            # a ratio's gauge and target stat read the window its alerts use
                            assert sel.range == "$__rate_interval" or ratio_window, where
                        if sel.range == "$__rate_interval":
                            assert sel.function in ("rate", "irate", "increase"), where
                        if sel.function == "increase":
                            # over the dashboard's range ("in range" stats) or the SLO period
                            assert sel.range in ("$__rate_interval", "$__range") or slo_period
                        if sel.metric.endswith("_total"):
                            assert sel.function in ("rate", "irate", "increase"), where
                            assert sel.range is not None, where


def sdk_units() -> set[str]:
    from grafana_foundation_sdk.models import units

    return {v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str)}


class TestSdkRoundTrip:
    """Grafana's Python SDK (11.6 build) decodes each dashboard; re-encoding loses no key."""

    def test_no_key_is_lost(self, rendered: list[dict[str, Any]]) -> None:
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.cog.plugins import register_default_plugins
        from grafana_foundation_sdk.models.dashboard import Dashboard

        register_default_plugins()
        for board in rendered:
            decoded = Dashboard.from_json(board)
            again = json.loads(json.dumps(decoded, cls=JSONEncoder))
            assert lost_keys(board, again) == [], board["title"]

    def test_a_misspelled_key_is_caught(self) -> None:
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.cog.plugins import register_default_plugins
        from grafana_foundation_sdk.models.dashboard import Dashboard

        register_default_plugins()
        board = render_board(boards(demo_spec())[0])
        panel = panels_of(board)[0]
        panel["options"]["reduceOption"] = panel["options"].pop("reduceOptions")
        panel["targets"][0]["legend_format"] = "x"
        again = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))
        lost = lost_keys(board, again)
        assert any(k.endswith(".options.reduceOption") for k in lost), lost
        assert any(k.endswith(".targets[0].legend_format") for k in lost), lost


def lost_keys(before: Any, after: Any, path: str = "") -> list[str]:
    """Keys (and values) of `before` missing or different in `after`; extra defaults are fine."""
    if isinstance(before, dict):
        if not isinstance(after, dict):
            return [path]
        found = []
        for key, value in before.items():
            if key not in after:
                found.append(f"{path}.{key}")
            else:
                found += lost_keys(value, after[key], f"{path}.{key}")
        return found
    if isinstance(before, list):
        if not isinstance(after, list) or len(before) != len(after):
            return [path]
        return [
            k
            for i, (a, b) in enumerate(zip(before, after, strict=True))
            for k in lost_keys(a, b, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {before!r} != {after!r}"]


class TestFiles:
    def test_deterministic(self, tmp_path: Path) -> None:
        first = render(kitchen_sink(tmp_path))
        second = render(kitchen_sink(tmp_path))
        assert first == second
        assert list(first) == sorted(first)

    def test_provisioning(self) -> None:
        files = render(demo_spec())
        provider = yaml.safe_load(files["provisioning/dashboards.yaml"])["providers"][0]
        assert provider["type"] == "file" and provider["allowUiUpdates"] is False
        assert provider["options"]["path"]

    def test_readme_lists_every_dashboard_and_panel(self) -> None:
        spec = demo_spec()
        files = render(spec)
        readme = files["README.md"]
        assert f"**{SCHEMA_VERSION}**" in readme
        for board in boards(spec):
            data = render_board(board)
            assert f"## {data['title']}" in readme
            for panel in panels_of(data):
                assert f"**{panel['title']}** ({panel['type']}" in readme

    def test_write_removes_only_our_stale_dashboards(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        out.mkdir()
        (out / "old.json").write_text(json.dumps({"tags": ["kpi-exporter"], "title": "old"}))
        (out / "theirs.json").write_text(json.dumps({"tags": ["team"], "title": "theirs"}))
        write(render(demo_spec()), out)
        assert not (out / "old.json").exists()
        assert (out / "theirs.json").exists()

    def test_committed_demo_dashboards_are_current(self) -> None:
        """`make generate` output for config/demo.yaml is what the repository holds."""
        expected = render(demo_spec())
        folder = ROOT / "dashboards"
        committed = {
            str(p.relative_to(folder)): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        stale = sorted(set(committed) ^ set(expected))
        assert not stale, f"files differ from the spec's: {stale}; run `make generate`"
        for name, text in expected.items():
            assert committed[name] == text, f"dashboards/{name} is out of date: run make generate"


def test_kitchen_sink_spec_is_valid(tmp_path: Path) -> None:
    """The test spec above loads (so failures below are the generator's, not the spec's)."""
    assert textwrap.dedent(KITCHEN_SINK) == KITCHEN_SINK
    assert len(kitchen_sink(tmp_path).kpis) == 10
