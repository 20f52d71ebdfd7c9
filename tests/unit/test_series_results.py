"""Query results rendered by render_plain, checked against exposition text and error messages
written out by hand: the exact text a user reads when a result does not fit its KPI (and the
column it names), each `le` spelling of +Inf, bytes labels, several labels and constant labels
on the column fast path, and values the fast path must hand to the general one."""

from __future__ import annotations

import math
from typing import Any

import pytest

from exporter.collection.series import ResultError, Shape, render_plain
from exporter.sources.base import Rows
from exporter.spec.model import Kpi


def make_kpi(**fields: Any) -> Kpi:
    base: dict[str, Any] = {
        "name": "depth",
        "type": "gauge",
        "database": "app",
        "interval": "30s",
        "query": "SELECT 1",
        "labels": ["queue"],
    }
    base.update(fields)
    return Kpi.model_validate(base)


def text(kpi: Kpi, columns: tuple[str, ...], rows: list[tuple[Any, ...]], **const: str) -> str:
    snapshot, _ = render_plain(kpi, kpi.name, const, Rows(columns, rows), 0)
    return snapshot.text.decode()


def failure(kpi: Kpi, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> tuple[str, Any]:
    """(message, column) of the ResultError the rows raise."""
    with pytest.raises(ResultError) as failed:
        render_plain(kpi, kpi.name, {}, Rows(columns, rows), 0)
    assert str(failed.value) == failed.value.message
    return failed.value.message, failed.value.column


HISTOGRAM = make_kpi(name="wait_seconds", type="histogram")
LONG = "x" * 50  # cut to 40 characters in messages


@pytest.mark.parametrize(
    ("kpi", "columns", "rows", "message", "column"),
    [
        (
            make_kpi(),
            ("id", "value"),
            [(1, 2)],
            "label column 'queue' is missing from the result (columns: id, value)",
            "queue",
        ),
        (
            make_kpi(),
            (),
            [],
            "label column 'queue' is missing from the result (columns: none)",
            "queue",
        ),
        (
            make_kpi(value="n"),
            ("queue", "value"),
            [("a", 1)],
            "value column 'n' is missing from the result (columns: queue, value)",
            "n",
        ),
        (
            make_kpi(value="n"),
            ("queue", "n"),
            [(None, 10**400)],
            f"value column 'n' holds '{'1' + '0' * 39}', beyond a float",
            "n",
        ),
        (
            make_kpi(value="n"),
            ("queue", "n"),
            [(None, LONG)],
            f"value column 'n' holds str '{'x' * 40}', not a number",
            "n",
        ),
        (
            make_kpi(max_series=1),
            ("queue", "value"),
            [("a", 1), ("b", 2)],
            "2 rows exceed max_series=1; nothing was published",
            None,
        ),
        (
            make_kpi(name="done_total", type="counter", value="n"),
            ("queue", "n"),
            [(None, -0.5)],
            "counter value -0.5 is negative or NaN",
            "n",
        ),
        (
            make_kpi(),
            ("queue", "value"),
            [(None, 1), ("", 2)],
            'two rows have the same labels {queue=""}; label columns must be unique',
            None,
        ),
        (
            make_kpi(labels=[]),
            ("value",),
            [(1,), (2,)],
            "two rows have the same labels ; label columns must be unique",
            None,
        ),
    ],
)
def test_plain_result_errors(
    kpi: Kpi, columns: tuple[str, ...], rows: list[tuple[Any, ...]], message: str, column: Any
) -> None:
    assert failure(kpi, columns, rows) == (message, column)


@pytest.mark.parametrize(
    ("kpi", "columns", "rows", "message", "column"),
    [
        (
            HISTOGRAM,
            ("queue", "value"),
            [("a", 1)],
            "bucket bound column 'le' is missing from the result (columns: queue, value)",
            "le",
        ),
        (
            make_kpi(name="wait_seconds", type="histogram", sum="seconds"),
            ("queue", "le", "value"),
            [("a", "+Inf", 1)],
            "sum column 'seconds' is missing from the result (columns: queue, le, value)",
            "seconds",
        ),
        (
            make_kpi(name="wait_seconds", type="histogram", value="n"),
            ("queue", "le", "n"),
            [("a", "+Inf", "many")],
            "value column 'n' holds str 'many', not a number",
            "n",
        ),
        (
            make_kpi(name="wait_seconds", type="histogram", sum="seconds"),
            ("queue", "le", "value", "seconds"),
            [("a", "+Inf", 1, "long")],
            "value column 'seconds' holds str 'long', not a number",
            "seconds",
        ),
        (
            HISTOGRAM,
            ("queue", "le", "value"),
            [("a", 1, 1), ("a", 1.0, 1)],
            "two rows have le=1.0 for the same labels",
            "le",
        ),
        (
            make_kpi(name="wait_seconds", type="histogram", max_series=1),
            ("queue", "le", "value"),
            [("a", "+Inf", 1), ("b", "+Inf", 1)],
            "2 series exceed max_series=1",
            None,
        ),
        (
            HISTOGRAM,
            ("queue", "le", "value"),
            [("a", 1, 1)],
            "each label set needs an le='+Inf' row (the total count)",
            "le",
        ),
        (
            HISTOGRAM,
            ("queue", "le", "value"),
            [("a", 1, 3), ("a", "+Inf", 2)],
            "bucket counts must be cumulative (non-decreasing in le)",
            "le",
        ),
        (
            HISTOGRAM,
            ("queue", "le", "value"),
            [("a", "one", 1)],
            "le 'one' is not a number",
            "le",
        ),
        (
            HISTOGRAM,
            ("queue", "le", "value"),
            [("a", b"1", 1)],
            "value column 'le' holds bytes \"b'1'\", not a number",
            "le",
        ),
    ],
)
def test_histogram_result_errors(
    kpi: Kpi, columns: tuple[str, ...], rows: list[tuple[Any, ...]], message: str, column: Any
) -> None:
    assert failure(kpi, columns, rows) == (message, column)


@pytest.mark.parametrize("spelling", ["+Inf", "inf", "INFINITY", " +inf "])
def test_each_spelling_of_the_infinite_bound(spelling: str) -> None:
    assert text(HISTOGRAM, ("queue", "le", "value"), [("a", spelling, 4)]) == (
        "# TYPE wait_seconds histogram\n"
        'wait_seconds_bucket{queue="a",le="+Inf"} 4.0\n'
        'wait_seconds_count{queue="a"} 4.0\n'
    )


def test_help_is_escaped_per_format() -> None:
    histogram = make_kpi(name="wait_seconds", type="histogram", help='wait "time"')
    assert text(histogram, ("queue", "le", "value"), [("a", "+Inf", 1)]).startswith(
        '# HELP wait_seconds wait "time"\n'
    )
    counter = make_kpi(name="done_total", type="counter", help='jobs "done"')
    snapshot, _ = render_plain(counter, "done_total", {}, Rows(("queue", "value"), []), 0)
    assert snapshot.text.decode() == '# HELP done_total jobs "done"\n# TYPE done_total counter\n'
    assert snapshot.openmetrics.decode() == '# HELP done jobs \\"done\\"\n# TYPE done counter\n'


def test_max_series_rows_are_allowed() -> None:
    assert text(make_kpi(max_series=2), ("queue", "value"), [("a", 1), ("b", 2)]) == (
        '# TYPE depth gauge\ndepth{queue="a"} 1.0\ndepth{queue="b"} 2.0\n'
    )


def test_counter_values_between_zero_and_one() -> None:
    counter = make_kpi(name="done_total", type="counter")
    for queue in (None, "a"):  # general path (NULL label) and column fast path
        assert text(counter, ("queue", "value"), [(queue, 0), ("b", 0.5)]) == (
            "# TYPE done_total counter\n"
            f'done_total{{queue="{queue or ""}"}} 0.0\ndone_total{{queue="b"}} 0.5\n'
        )


def test_bytes_labels_are_utf8_with_replacement() -> None:
    rows = [(b"caf\xc3\xa9", 1), (bytearray(b"\xff"), 2), (memoryview(b"m"), 3)]
    assert text(make_kpi(), ("queue", "value"), rows) == (
        '# TYPE depth gauge\ndepth{queue="café"} 1.0\ndepth{queue="\ufffd"} 2.0\n'
        'depth{queue="m"} 3.0\n'
    )


class TestColumnFastPath:
    """String labels and finite numbers: lines built a column at a time."""

    def test_two_labels_and_two_constant_labels(self) -> None:
        kpi = make_kpi(labels=["queue", "tier"])
        rows = [("a", "x", 1), ("a", "y", 2.5), ("b", "x", 3)]
        assert text(kpi, ("queue", "tier", "value"), rows, env="prod", site="b") == (
            "# TYPE depth gauge\n"
            'depth{env="prod",site="b",queue="a",tier="x"} 1.0\n'
            'depth{env="prod",site="b",queue="a",tier="y"} 2.5\n'
            'depth{env="prod",site="b",queue="b",tier="x"} 3.0\n'
        )

    def test_one_row_without_labels(self) -> None:
        assert text(make_kpi(labels=[]), ("value",), [(3.5,)]) == (
            "# TYPE depth gauge\ndepth 3.5\n"
        )

    def test_empty_counter_result(self) -> None:
        counter = make_kpi(name="done_total", type="counter")
        snapshot, skipped = render_plain(counter, "done_total", {}, Rows(("queue", "value"), []), 0)
        assert (snapshot.text.decode(), snapshot.series, skipped) == (
            "# TYPE done_total counter\n",
            0,
            0,
        )

    @pytest.mark.parametrize(("value", "written"), [(math.inf, "+Inf"), (-math.inf, "-Inf")])
    def test_infinite_gauge_values_in_go_syntax(self, value: float, written: str) -> None:
        assert text(make_kpi(), ("queue", "value"), [("a", value), ("b", 1)]) == (
            f'# TYPE depth gauge\ndepth{{queue="a"}} {written}\ndepth{{queue="b"}} 1.0\n'
        )


def test_shape_for_rendering_stored_totals() -> None:
    kpi = make_kpi(
        name="done_total",
        type="counter",
        labels=["queue", "tier"],
        cursor="id",
        value="n",
        query="SELECT id, queue, tier, n FROM t WHERE id > :cursor ORDER BY id LIMIT :batch",
    )
    shape = Shape.for_rendering(kpi, "done_total", {"env": "prod"})
    assert (shape.label_index, shape.value_index) == ([0, 1], 2)
    assert shape.labels(("a", 'q"')) == '{env="prod",queue="a",tier="q\\""}'
    with pytest.raises(ValueError, match="shorter"):
        shape.labels(("a",))  # a stored key of another label set is refused, never cut short
