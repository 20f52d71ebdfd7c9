"""Cursor totals off the column fast path, SQL-computed histograms and label text, checked
against exposition text written out by hand (issue 14's surviving mutations)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from support.kpis import kpi as make_kpi

from exporter.collection.series import ResultError, Shape, render_plain
from exporter.collection.totals import SeriesTotal, Totals
from exporter.sources.base import Rows
from exporter.spec.model import Kpi

CURSOR_QUERY = "SELECT id, shard, value FROM t WHERE id > :cursor ORDER BY id LIMIT :batch"


def cursor_kpi(kind: str, **fields: Any) -> Kpi:
    base: dict[str, Any] = {
        "name": "jobs_total" if kind == "counter" else "job_seconds",
        "type": kind,
        "database": "app",
        "interval": "30s",
        "query": CURSOR_QUERY,
        "cursor": "id",
        "labels": ["shard"],
        "value": "value",
    }
    base.update(fields)
    return Kpi.model_validate(base)


def staged_text(kpi: Kpi, rows: list[tuple[Any, ...]], now: float = 100.0) -> str:
    result = Rows(("id", "shard", "value"), rows)
    shape = Shape(kpi, kpi.name, {}, result)
    totals = Totals(kpi)
    totals.merge(totals.stage(shape, result.rows, now))
    return totals.render(shape, now).text.decode()


class TestGeneralPath:
    """Integer shard labels keep every batch off the column fast path."""

    def test_bucket_bounds_are_inclusive(self) -> None:
        kpi = cursor_kpi("histogram", buckets=[1, 5])
        text = staged_text(kpi, [(1, 7, 1), (2, 7, 5), (3, 7, 6)])
        assert text == (
            "# TYPE job_seconds histogram\n"
            'job_seconds_bucket{shard="7",le="1.0"} 1\n'
            'job_seconds_bucket{shard="7",le="5.0"} 2\n'
            'job_seconds_bucket{shard="7",le="+Inf"} 3\n'
            'job_seconds_count{shard="7"} 3\n'
            'job_seconds_sum{shard="7"} 12.0\n'
        )

    def test_null_value_is_skipped(self) -> None:
        kpi = cursor_kpi("counter")
        text = staged_text(kpi, [(1, 7, 2), (2, 7, None), (3, 7, 3)])
        assert text == '# TYPE jobs_total counter\njobs_total{shard="7"} 5.0\n'

    def test_negative_increment_is_refused(self) -> None:
        with pytest.raises(ResultError, match=r"negative value -1\.0"):
            staged_text(cursor_kpi("counter"), [(1, 7, 2), (2, 7, -1)])

    def test_negative_observation_fills_the_first_bucket(self) -> None:
        text = staged_text(cursor_kpi("histogram", buckets=[0]), [(1, 7, -2)])
        assert 'job_seconds_bucket{shard="7",le="0.0"} 1\n' in text

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_nan_and_infinity_fail_the_batch(self, bad: float) -> None:
        kpi = cursor_kpi("counter")
        result = Rows(("id", "shard", "value"), [(1, 7, 1), (2, 7, bad)])
        shape = Shape(kpi, kpi.name, {}, result)
        totals = Totals(kpi, {("7",): SeriesTotal(created=1.0, value=10.0)})
        with pytest.raises(ResultError, match="cannot be accumulated"):
            totals.stage(shape, result.rows, 2.0)
        assert totals.series[("7",)].value == 10.0

    @pytest.mark.parametrize("shard", [7, "s7"])  # general path and column fast path
    def test_max_series_counts_stored_series(self, shard: Any) -> None:
        kpi = cursor_kpi("counter", max_series=2)
        stored = {("a",): SeriesTotal(1.0, 1.0), ("b",): SeriesTotal(1.0, 1.0)}
        result = Rows(("id", "shard", "value"), [(1, shard, 1)])
        shape = Shape(kpi, kpi.name, {}, result)
        with pytest.raises(ResultError, match="max_series=2"):
            Totals(kpi, stored).stage(shape, result.rows, 2.0)
        again = Rows(("id", "shard", "value"), [(1, "a", 1), (2, "b", 1)])
        assert set(Totals(kpi, stored).stage(shape, again.rows, 2.0)) == {("a",), ("b",)}

    def test_counter_created_is_the_first_poll_time(self) -> None:
        kpi = cursor_kpi("counter")
        result = Rows(("id", "shard", "value"), [(1, 7, 4), (2, 7, 3)])
        shape = Shape(kpi, kpi.name, {}, result)
        totals = Totals(kpi)
        totals.merge(totals.stage(shape, result.rows, 1000.0))
        totals.merge(totals.stage(shape, result.rows[:1], 2000.0))
        assert totals.render(shape, 2000.0).openmetrics.decode() == (
            '# TYPE jobs counter\njobs_total{shard="7"} 11.0\njobs_created{shard="7"} 1000.0\n'
        )

    def test_rows_without_value_column_count_one_each(self) -> None:
        kpi = cursor_kpi("counter", value=None)
        assert staged_text(kpi, [(1, 7, 9), (2, 7, 9), (3, 8, 9)]) == (
            '# TYPE jobs_total counter\njobs_total{shard="7"} 2.0\njobs_total{shard="8"} 1.0\n'
        )


def sql_histogram(rows: list[tuple[Any, ...]]) -> tuple[str, int]:
    kpi = make_kpi(interval="30s", name="latency_seconds", type="histogram", labels=["route"])
    snapshot, skipped = render_plain(
        kpi, "latency_seconds", {}, Rows(("route", "le", "value"), rows), 0
    )
    return snapshot.text.decode(), skipped


class TestSqlHistogram:
    def test_empty_buckets_are_accepted(self) -> None:
        text, _ = sql_histogram([("/a", 0.5, 2), ("/a", 1, 2), ("/a", "+Inf", 2)])
        assert text == (
            "# TYPE latency_seconds histogram\n"
            'latency_seconds_bucket{route="/a",le="0.5"} 2.0\n'
            'latency_seconds_bucket{route="/a",le="1.0"} 2.0\n'
            'latency_seconds_bucket{route="/a",le="+Inf"} 2.0\n'
            'latency_seconds_count{route="/a"} 2.0\n'
        )

    def test_null_le_row_is_skipped(self) -> None:
        text, skipped = sql_histogram([("/a", None, 1), ("/a", "+Inf", 3), ("/a", 1, None)])
        assert skipped == 2
        assert text == (
            "# TYPE latency_seconds histogram\n"
            'latency_seconds_bucket{route="/a",le="+Inf"} 3.0\n'
            'latency_seconds_count{route="/a"} 3.0\n'
        )

    def test_duplicate_le_is_refused(self) -> None:
        with pytest.raises(ResultError, match=r"two rows have le=1\.0"):
            sql_histogram([("/a", 1, 1), ("/a", "1", 2), ("/a", "+Inf", 3)])

    def test_boolean_counts_are_numbers(self) -> None:
        text, _ = sql_histogram([("/a", 1, False), ("/a", "inf", True)])
        assert 'latency_seconds_bucket{route="/a",le="1.0"} 0.0\n' in text
        assert 'latency_seconds_count{route="/a"} 1.0\n' in text

    def test_max_series_counts_label_sets_not_rows(self) -> None:
        rows = [(r, le, 1) for r in ("/a", "/b") for le in (1, "+Inf")]
        kpi = make_kpi(interval="30s", name="h", type="histogram", labels=["route"], max_series=2)
        snapshot, _ = render_plain(kpi, "h", {}, Rows(("route", "le", "value"), rows), 0)
        assert snapshot.series == 2
        with pytest.raises(ResultError, match="3 series exceed max_series=2"):
            render_plain(kpi, "h", {}, Rows(("route", "le", "value"), [*rows, ("/c", 1, 1)]), 0)


def gauge(rows: list[tuple[Any, Any]]) -> str:
    kpi = make_kpi(interval="30s", name="depth", labels=["queue"])
    snapshot, _ = render_plain(kpi, "depth", {}, Rows(("queue", "value"), rows), 0)
    return snapshot.text.decode()


class TestLabelText:
    def test_whole_float_label_drops_the_point(self) -> None:
        assert gauge([(2.0, 1), (2.5, 2), (-3.0, 3)]) == (
            '# TYPE depth gauge\ndepth{queue="2"} 1.0\ndepth{queue="2.5"} 2.0\n'
            'depth{queue="-3"} 3.0\n'
        )

    @pytest.mark.parametrize(
        ("raw", "written"),
        [('"', '\\"'), ("\\", "\\\\"), ("\n", "\\n"), ('a"\\\nb', 'a\\"\\\\\\nb')],
    )
    def test_fast_path_escapes_each_special_character_alone(self, raw: str, written: str) -> None:
        assert gauge([(raw, 1), ("plain", 2)]) == (
            f'# TYPE depth gauge\ndepth{{queue="{written}"}} 1.0\ndepth{{queue="plain"}} 2.0\n'
        )


def test_general_path_small_increments_shared_buckets_and_quoted_help() -> None:
    counter = cursor_kpi("counter", help='say "hi"')
    assert staged_text(counter, [(1, 7, 0), (2, 7, 0.5)]) == (
        '# HELP jobs_total say "hi"\n# TYPE jobs_total counter\njobs_total{shard="7"} 0.5\n'
    )
    result = Rows(("id", "shard", "value"), [(1, 7, 1)])
    totals = Totals(counter)
    totals.merge(totals.stage(Shape(counter, counter.name, {}, result), result.rows, 5.0))
    assert totals.render(Shape(counter, counter.name, {}, result), 5.0).openmetrics.decode() == (
        '# HELP jobs say \\"hi\\"\n# TYPE jobs counter\n'
        'jobs_total{shard="7"} 1.0\njobs_created{shard="7"} 5.0\n'
    )
    histogram = cursor_kpi("histogram", buckets=[1], help='a "b"')
    text = staged_text(histogram, [(1, 7, 1), (2, 7, 0.5), (3, 7, 2)])
    assert text.startswith('# HELP job_seconds a "b"\n# TYPE job_seconds histogram\n')
    assert 'job_seconds_bucket{shard="7",le="1.0"} 2\n' in text
    with pytest.raises(ResultError) as failed:
        staged_text(counter, [(1, 7, -1)])
    assert failed.value.column == "value"
