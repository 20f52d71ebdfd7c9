"""Cursor totals off the column fast path, SQL-computed histograms and label text, checked
against exposition text written out by hand (issue 14's surviving mutations)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


def stage_rows(
    kpi: Kpi,
    columns: tuple[str, ...],
    batches: list[list[tuple[Any, ...]]],
    stored: dict[tuple[str, ...], SeriesTotal] | None = None,
) -> Totals:
    """Each batch staged and merged in turn, at t=100, 200, …"""
    totals = Totals(kpi, stored)
    for number, batch in enumerate(batches, 1):
        shape = Shape(kpi, kpi.name, {}, Rows(columns, batch))
        totals.merge(totals.stage(shape, batch, 100.0 * number))
    return totals


def rendered(totals: Totals, columns: tuple[str, ...]) -> tuple[str, str, float | None]:
    snapshot = totals.render(Shape(totals.kpi, totals.kpi.name, {}, Rows(columns, [])), 500.0)
    return snapshot.text.decode(), snapshot.openmetrics.decode(), snapshot.total


COLUMNS = ("id", "shard", "value")


class TestColumnPath:
    """String labels and finite numbers: the batch is staged a column at a time."""

    def test_rows_from_an_iterator(self) -> None:
        rows = [(1, "a", 2), (2, "b", 3), (3, "a", 4)]
        kpi = cursor_kpi("counter")
        shape = Shape(kpi, kpi.name, {}, Rows(COLUMNS, rows))
        staged = Totals(kpi).stage(shape, iter(rows), 100.0)
        assert {key: entry.value for key, entry in staged.items()} == {("a",): 6.0, ("b",): 3.0}

    def test_null_value_is_skipped(self) -> None:
        totals = stage_rows(cursor_kpi("counter"), COLUMNS, [[(1, "a", 2), (2, "a", None)]])
        assert rendered(totals, COLUMNS)[0] == (
            '# TYPE jobs_total counter\njobs_total{shard="a"} 2.0\n'
        )

    @pytest.mark.parametrize("kind", ["counter", "histogram"])
    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_nan_and_infinity_fail_the_batch(self, kind: str, bad: float) -> None:
        kpi = cursor_kpi(kind, buckets=[1]) if kind == "histogram" else cursor_kpi(kind)
        with pytest.raises(ResultError) as failed:
            stage_rows(kpi, COLUMNS, [[(1, "a", 1), (2, "a", bad)]])
        assert (str(failed.value), failed.value.column) == (
            f"value {bad!r} cannot be accumulated",
            "value",
        )

    @pytest.mark.parametrize("huge", [10**400, Decimal("sNaN")])
    def test_value_beyond_a_float_is_a_result_error(self, huge: Any) -> None:
        with pytest.raises(ResultError, match="beyond a float"):
            stage_rows(cursor_kpi("counter"), COLUMNS, [[(1, "a", 1), (2, "a", huge)]])

    @pytest.mark.parametrize("shard", [7, "s7"])  # general path and column path
    def test_negative_increment_message(self, shard: Any) -> None:
        with pytest.raises(ResultError) as failed:
            stage_rows(cursor_kpi("counter"), COLUMNS, [[(1, shard, 2), (2, shard, -1)]])
        assert str(failed.value) == "negative value -1.0 would make the counter go down"

    @pytest.mark.parametrize("shard", [7, "s7"])
    def test_max_series_message(self, shard: Any) -> None:
        stored = {("a",): SeriesTotal(1.0, 1.0), ("b",): SeriesTotal(1.0, 1.0)}
        with pytest.raises(ResultError) as failed:
            stage_rows(cursor_kpi("counter", max_series=2), COLUMNS, [[(1, shard, 1)]], stored)
        assert str(failed.value) == "more than max_series=2 series; not applied"

    def test_two_labels(self) -> None:
        kpi = cursor_kpi("counter", labels=["shard", "zone"])
        columns = ("id", "shard", "zone", "value")
        rows = [(1, "a", "x", 1), (2, "a", "y", 2), (3, "a", "x", 4)]
        assert rendered(stage_rows(kpi, columns, [rows]), columns)[0] == (
            "# TYPE jobs_total counter\n"
            'jobs_total{shard="a",zone="x"} 5.0\n'
            'jobs_total{shard="a",zone="y"} 2.0\n'
        )

    def test_no_labels(self) -> None:
        kpi = cursor_kpi("counter", labels=[])
        columns = ("id", "value")
        totals = stage_rows(kpi, columns, [[(1, 1), (2, 2.5)], [(3, 0.5)]])
        assert rendered(totals, columns)[:2] == (
            "# TYPE jobs_total counter\njobs_total 4.0\n",
            "# TYPE jobs counter\njobs_total 4.0\njobs_created 100.0\n",
        )

    def test_histogram_adds_to_stored_counts_and_buckets(self) -> None:
        kpi = cursor_kpi("histogram", buckets=[1, 5], help='time "taken"')
        batches = [[(1, "a", 0.5), (2, "a", 5), (3, "a", 9)], [(4, "a", 1), (5, "a", 7)]]
        text, om, total = rendered(stage_rows(kpi, COLUMNS, batches), COLUMNS)
        samples = (
            'job_seconds_bucket{shard="a",le="1.0"} 2\n'
            'job_seconds_bucket{shard="a",le="5.0"} 3\n'
            'job_seconds_bucket{shard="a",le="+Inf"} 5\n'
            'job_seconds_count{shard="a"} 5\n'
            'job_seconds_sum{shard="a"} 22.5\n'
        )
        assert text == '# HELP job_seconds time "taken"\n# TYPE job_seconds histogram\n' + samples
        assert om == (
            '# HELP job_seconds time \\"taken\\"\n# TYPE job_seconds histogram\n'
            + samples
            + 'job_seconds_created{shard="a"} 100.0\n'
        )
        assert total == 5.0  # a histogram's total is its observation count

    def test_counter_total_is_the_sum_of_its_series(self) -> None:
        totals = stage_rows(cursor_kpi("counter"), COLUMNS, [[(1, "a", 2), (2, "b", 0.5)]])
        assert rendered(totals, COLUMNS)[2] == 2.5


BOUNDS = [0.5, 2.0]


def reference(rows: list[tuple[Any, ...]], histogram: bool) -> dict[tuple[str, ...], Any]:
    """Per label set: (sum in row order, count, per-bucket counts with le inclusive; a counter
    has neither count nor buckets), NULL values skipped: the accumulation written out plainly,
    apart from either staging path."""
    out: dict[tuple[str, ...], Any] = {}
    for _id, shard, value in rows:
        if value is None:
            continue
        total, count, buckets = out.get((shard,), (0.0, 0, [0, 0, 0]))
        slot = next((i for i, bound in enumerate(BOUNDS) if float(value) <= bound), 2)
        buckets = [n + (i == slot) for i, n in enumerate(buckets)]
        if histogram:
            out[(shard,)] = (total + float(value), count + 1, buckets)
        else:
            out[(shard,)] = (total + float(value), 0, [])
    return out


values = st.one_of(
    st.sampled_from([0, 0.5, 2, 2.0, True, Decimal("0.25")]),
    st.floats(min_value=0, max_value=1e9),
    st.integers(min_value=0, max_value=10**6),
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["counter", "histogram"]),
    batch=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), values), max_size=12),
)
def test_column_and_general_paths_agree_with_a_reference(
    kind: str, batch: list[tuple[str, Any]]
) -> None:
    """The same string-labelled batch on the column path, and with a NULL-valued row added
    (which sends it to the general path), stage what the reference adds up."""
    kpi = cursor_kpi(kind, buckets=BOUNDS) if kind == "histogram" else cursor_kpi(kind)
    rows = [(i, shard, value) for i, (shard, value) in enumerate(batch)]
    expected = reference(rows, kind == "histogram")
    for taken in (rows, [*rows, (len(rows), "a", None)]):
        shape = Shape(kpi, kpi.name, {}, Rows(COLUMNS, taken))
        staged = Totals(kpi).stage(shape, taken, 1.0)
        got = {key: (e.value, e.count, e.buckets) for key, e in staged.items()}
        assert got == expected
