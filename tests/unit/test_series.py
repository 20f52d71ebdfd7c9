"""Rows → series → exposition: validation, both formats, gzip bodies, parsed back."""

from __future__ import annotations

import gzip
import math
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from exporter.collection.series import ResultError, Shape, render_plain
from exporter.collection.totals import Totals
from exporter.serving.publication import Publication
from exporter.sources.base import Rows
from exporter.spec.model import Kpi


def make_kpi(**fields: Any) -> Kpi:
    base: dict[str, Any] = {
        "name": "queue_depth",
        "type": "gauge",
        "database": "app",
        "interval": "30s",
        "query": "SELECT 1",
        "labels": ["queue"],
    }
    base.update(fields)
    return Kpi.model_validate(base)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_parse(text)
        for s in family.samples
    }


CONST = {"service": "billing"}


class TestRenderPlain:
    def test_gauge_values_and_labels(self) -> None:
        rows = Rows(("queue", "value"), [("a", 1), ("b", Decimal("2.5")), ("c", True)])
        snapshot, skipped = render_plain(make_kpi(help="Depth"), "queue_depth", CONST, rows, 0)
        assert skipped == 0 and snapshot.series == 3
        got = samples(snapshot.text.decode())
        assert got == {
            ("queue_depth", (("queue", "a"), ("service", "billing"))): 1.0,
            ("queue_depth", (("queue", "b"), ("service", "billing"))): 2.5,
            ("queue_depth", (("queue", "c"), ("service", "billing"))): 1.0,
        }
        assert snapshot.openmetrics is snapshot.text  # gauges share one rendering

    def test_hostile_label_values_round_trip(self) -> None:
        values = ['quo"te', "back\\slash", "new\nline", "nul\x00", "ünï", "x" * 65536, None, 7]
        rows = Rows(("queue", "value"), [(v, i) for i, v in enumerate(values)])
        snapshot, _ = render_plain(make_kpi(max_series=100), "queue_depth", {}, rows, 0)
        parsed = {
            s.labels["queue"]: s.value
            for f in text_parse(snapshot.text.decode())
            for s in f.samples
        }
        expected = {("" if v is None else str(v)): float(i) for i, v in enumerate(values)}
        assert parsed == expected

    def test_special_values(self) -> None:
        rows = Rows(
            ("queue", "value"), [("a", math.nan), ("b", math.inf), ("c", -math.inf), ("d", 10**30)]
        )
        snapshot, _ = render_plain(make_kpi(), "queue_depth", {}, rows, 0)
        got = {
            s.labels["queue"]: s.value
            for f in text_parse(snapshot.text.decode())
            for s in f.samples
        }
        assert math.isnan(got["a"]) and got["b"] == math.inf and got["c"] == -math.inf
        assert got["d"] == 1e30

    def test_null_value_skips_row(self) -> None:
        rows = Rows(("queue", "value"), [("a", None), ("b", 1)])
        snapshot, skipped = render_plain(make_kpi(), "queue_depth", {}, rows, 0)
        assert skipped == 1 and snapshot.series == 1

    @pytest.mark.parametrize(
        ("rows", "message"),
        [
            (Rows(("value",), [(1,)]), "label column 'queue' is missing from the result"),
            (Rows(("queue", "n"), [("a", 1)]), "value column 'value' is missing"),
            (
                Rows(("queue", "value"), [("a", "12")]),
                "value column 'value' holds str '12', not a number",
            ),
            (Rows(("queue", "value"), [("a", 1), ("a", 2)]), "two rows have the same labels"),
            (
                Rows(("queue", "value"), [(str(i), i) for i in range(4)]),
                "4 rows exceed max_series=3",
            ),
        ],
    )
    def test_bad_results(self, rows: Rows, message: str) -> None:
        with pytest.raises(ResultError, match=message.replace("(", r"\(").replace(")", r"\)")):
            render_plain(make_kpi(max_series=3), "queue_depth", {}, rows, 0)

    def test_database_counter_in_both_formats(self) -> None:
        kpi = make_kpi(
            name="revenue_usd_total", type="counter", labels=["currency"], help="Revenue"
        )
        rows = Rows(("currency", "value"), [("usd", 12.5)])
        snapshot, _ = render_plain(kpi, "revenue_usd_total", {}, rows, 0)
        text = snapshot.text.decode()
        assert "# TYPE revenue_usd_total counter" in text
        families = list(om_parse(snapshot.openmetrics.decode() + "# EOF\n"))
        assert families[0].name == "revenue_usd" and families[0].type == "counter"
        assert families[0].samples[0].value == 12.5

    def test_counter_refuses_negative(self) -> None:
        kpi = make_kpi(name="x_total", type="counter", labels=[])
        with pytest.raises(ResultError, match="negative"):
            render_plain(kpi, "x_total", {}, Rows(("value",), [(-1,)]), 0)


class TestPreaggregatedHistogram:
    def kpi(self) -> Kpi:
        return make_kpi(name="latency_seconds", type="histogram", labels=["route"], sum="total")

    def test_rows_become_one_histogram(self) -> None:
        rows = Rows(
            ("route", "le", "value", "total"),
            [("/a", 0.1, 2, 3.5), ("/a", 1, 5, 3.5), ("/a", "+Inf", 6, 3.5)],
        )
        snapshot, _ = render_plain(self.kpi(), "latency_seconds", {}, rows, 0)
        got = samples(snapshot.text.decode())
        assert got[("latency_seconds_bucket", (("le", "0.1"), ("route", "/a")))] == 2
        assert got[("latency_seconds_bucket", (("le", "+Inf"), ("route", "/a")))] == 6
        assert got[("latency_seconds_count", (("route", "/a"),))] == 6
        assert got[("latency_seconds_sum", (("route", "/a"),))] == 3.5

    def test_needs_inf_and_cumulative_counts(self) -> None:
        with pytest.raises(ResultError, match=r"le='\+Inf'"):
            render_plain(
                self.kpi(), "h", {}, Rows(("route", "le", "value", "total"), [("/a", 1, 2, 0)]), 0
            )
        rows = Rows(("route", "le", "value", "total"), [("/a", 1, 5, 0), ("/a", "+Inf", 4, 0)])
        with pytest.raises(ResultError, match="cumulative"):
            render_plain(self.kpi(), "h", {}, rows, 0)


class TestTotals:
    def test_histogram_buckets_sum_count_created(self) -> None:
        kpi = make_kpi(
            name="job_seconds",
            type="histogram",
            labels=["queue"],
            cursor="id",
            buckets=[1, 5],
            query="SELECT id, queue, value FROM t WHERE id > :cursor ORDER BY id LIMIT :batch",
        )
        rows = Rows(
            ("id", "queue", "value"), [(1, "q", 0.5), (2, "q", 1), (3, "q", 3), (4, "q", 9)]
        )
        shape = Shape(kpi, "job_seconds", {}, rows)
        totals = Totals(kpi)
        totals.merge(totals.stage(shape, rows.rows, now=1000.0))
        snapshot = totals.render(shape, 1000.0)
        got = samples(snapshot.text.decode())
        assert got[("job_seconds_bucket", (("le", "1.0"), ("queue", "q")))] == 2  # le is inclusive
        assert got[("job_seconds_bucket", (("le", "5.0"), ("queue", "q")))] == 3
        assert got[("job_seconds_bucket", (("le", "+Inf"), ("queue", "q")))] == 4
        assert got[("job_seconds_count", (("queue", "q"),))] == 4
        assert got[("job_seconds_sum", (("queue", "q"),))] == 13.5
        om = list(om_parse(snapshot.openmetrics.decode() + "# EOF\n"))
        created = [s for s in om[0].samples if s.name == "job_seconds_created"]
        assert created[0].value == 1000.0
        assert snapshot.total == 4  # a histogram's chart total is its count

    def test_staging_leaves_totals_untouched(self) -> None:
        kpi = make_kpi(
            name="events_total",
            type="counter",
            labels=["queue"],
            cursor="id",
            query="SELECT id, queue FROM t WHERE id > :cursor ORDER BY id LIMIT :batch",
        )
        rows = Rows(("id", "queue"), [(1, "q"), (2, "q")])
        shape = Shape(kpi, "events_total", {}, rows)
        totals = Totals(kpi)
        staged = totals.stage(shape, rows.rows, 0)
        assert totals.series == {} and staged[("q",)].value == 2
        totals.merge(staged)
        again = totals.stage(shape, rows.rows, 0)
        assert totals.series[("q",)].value == 2 and again[("q",)].value == 4


class TestSnapshotTotal:
    """The status page's chart total: the sum of the published samples, whichever path."""

    def test_fast_path_sums_the_values(self) -> None:
        rows = Rows(("queue", "value"), [("a", 2), ("b", 3.5), ("c", Decimal("0.25"))])
        snapshot, _ = render_plain(make_kpi(), "queue_depth", {}, rows, 0)
        assert snapshot.total == 5.75

    def test_general_path_skips_nulls(self) -> None:
        rows = Rows(("queue", "value"), [("a", 2), ("b", None), (None, 4)])
        snapshot, skipped = render_plain(make_kpi(), "queue_depth", {}, rows, 0)
        assert skipped == 1 and snapshot.total == 6

    def test_preaggregated_histogram_sums_the_inf_buckets(self) -> None:
        kpi = make_kpi(name="wait_seconds", type="histogram")
        rows = Rows(
            ("queue", "le", "value"),
            [("a", 1, 2), ("a", "+Inf", 5), ("b", 1, 1), ("b", "+Inf", 7)],
        )
        snapshot, _ = render_plain(kpi, "wait_seconds", {}, rows, 0)
        assert snapshot.total == 12


class TestPublication:
    def test_gzip_body_is_one_valid_member_equal_to_plain(self) -> None:
        publication = Publication(lambda om: b"# EOF\n" if om else b"self_metric 1.0\n")
        for name in ("b_kpi", "a_kpi"):
            kpi = make_kpi(name=name)
            rows = Rows(("queue", "value"), [(f"q{i}", i) for i in range(500)])
            snapshot, _ = render_plain(kpi, name, CONST, rows, 0)
            publication.publish(snapshot)
        for om in (False, True):
            plain = publication.body(om, gzip=False)
            packed = publication.body(om, gzip=True)
            assert gzip.decompress(packed) == plain
            assert plain.index(b"a_kpi") < plain.index(b"b_kpi")  # sorted by KPI
        assert publication.body(True, False).endswith(b"# EOF\n")
        assert len(list(om_parse(publication.body(True, False).decode()))) == 2
        publication.withdraw("a_kpi")
        assert b"a_kpi" not in gzip.decompress(publication.body(False, True))
