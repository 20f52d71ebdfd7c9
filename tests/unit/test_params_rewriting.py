"""`:name` placeholders found and rewritten per driver, against hand-written SQL (issue 14's
surviving parameter-rewriting mutations)."""

from __future__ import annotations

import datetime as dt

import pytest

from exporter.collection.binding import bind_params, settled
from exporter.spec.model import Kpi
from exporter.spec.params import placeholders, to_paramstyle, to_pyformat, to_qmark_mysql

# (query, placeholders, pyformat, dollar)
CASES = [
    ('SELECT "a:b", "x"":y" FROM t WHERE v = :p', {"p"}, None, None),
    ("SELECT $tag$ :x $t$ ' $tag$, $$ :y $$ WHERE v = :p", {"p"}, None, None),
    ("SELECT id % 2 FROM t WHERE v = :p", {"p"}, "SELECT id %% 2 FROM t WHERE v = %(p)s", None),
    ("SELECT '50%' WHERE v = :p1 AND w = :p22", {"p1", "p22"}, None, None),
    ("/* :a */ SELECT :p /* :b\n:c\n */ FROM t", {"p"}, None, None),
    (
        "/* x */ SELECT :p /* y */",
        {"p"},
        "/* x */ SELECT %(p)s /* y */",
        "/* x */ SELECT $p /* y */",
    ),
    ("SELECT :p::int -- :q\n, 'it''s :r', :s", {"p", "s"}, None, None),
    ("SELECT a:b, x::date, :_n", {"_n"}, None, None),
]


@pytest.mark.parametrize(("query", "names", "pyformat", "dollar"), CASES)
def test_placeholders_and_rewrites(
    query: str, names: set[str], pyformat: str | None, dollar: str | None
) -> None:
    assert placeholders(query) == names
    if pyformat is not None:
        assert to_pyformat(query) == pyformat
        assert to_paramstyle(query, "pyformat") == pyformat
    if dollar is not None:
        assert to_paramstyle(query, "dollar") == dollar
    assert to_paramstyle(query, "named") is query


def test_pyformat_doubles_percent_inside_strings_and_leaves_skipped_text() -> None:
    query = "SELECT '5%' AS a, \"c%\" /* 1% :x */, $q$ %:y $q$ FROM t WHERE v = :p1"
    assert to_pyformat(query) == (
        "SELECT '5%%' AS a, \"c%%\" /* 1%% :x */, $q$ %%:y $q$ FROM t WHERE v = %(p1)s"
    )


def test_dollar_style_keeps_strings_and_comments() -> None:
    assert to_paramstyle("SELECT 7 % 2, :p", "dollar") == "SELECT 7 % 2, $p"
    query = "SELECT ':a' /* :b */ , :now -- :c\n FROM t WHERE id > :cursor"
    assert to_paramstyle(query, "dollar") == (
        "SELECT ':a' /* :b */ , $now -- :c\n FROM t WHERE id > $cursor"
    )


def test_sqlalchemy_escapes_colons_text_would_misread() -> None:
    query = "SELECT ':a', :p::int, x FROM t WHERE y = :q2"
    assert to_paramstyle(query, "sqlalchemy") == "SELECT '\\:a', :p ::int, x FROM t WHERE y = :q2"


def test_mysql_qmark_in_binding_order() -> None:
    query = "SELECT '\\':x', `a:b`, # :c\n :b1 /* :d */ -- :e\n, :a, :b1, 50 % 3"
    assert to_qmark_mysql(query) == (
        "SELECT '\\':x', `a:b`, # :c\n ? /* :d */ -- :e\n, ?, ?, 50 % 3",
        ("b1", "a", "b1"),
    )
    assert to_paramstyle(query, "qmark") == to_qmark_mysql(query)[0]
    assert to_qmark_mysql("SELECT 1 --:x") == ("SELECT 1 --?", ("x",))  # '--' needs a space


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parameter style 'numeric'"):
        to_paramstyle("SELECT :p", "numeric")  # type: ignore[arg-type]


def cursor_kpi(settle: str | None) -> Kpi:
    fields = {
        "name": "events_total",
        "type": "counter",
        "database": "app",
        "interval": "30s",
        "query": "SELECT id FROM t WHERE id > :cursor AND at < :settled LIMIT :batch",
        "cursor": "id",
        "params": {"region": "eu"},
    }
    if settle is not None:
        fields["settle"] = settle
    return Kpi.model_validate(fields)


def test_bind_params_names_each_value() -> None:
    used = {"now", "last_success", "batch", "cursor", "tiebreak", "settled", "region"}
    values = bind_params(
        cursor_kpi("30s"), used, 1000.0, cursor=5, tiebreak="t", last_success=900.0, batch=50
    )
    assert values == {
        "now": 1000.0,
        "last_success": 900.0,
        "batch": 50,
        "cursor": 5,
        "tiebreak": "t",
        "settled": 970.0,
        "region": "eu",
    }
    only = bind_params(
        cursor_kpi(None), {"settled"}, 10.0, cursor=1, tiebreak=None, last_success=0, batch=1
    )
    assert only == {"settled": 10.0}


@pytest.mark.parametrize("cursor", [dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "2026-01-01T00:00:00Z"])
def test_settled_is_a_utc_timestamp_for_a_timestamp_cursor(cursor: object) -> None:
    moment = settled(cursor_kpi("60s"), cursor, 1767225660.0)
    assert moment == dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)
    assert moment.tzinfo is dt.UTC


def test_unknown_parameter_style_is_named_in_the_error() -> None:
    with pytest.raises(ValueError) as failed:
        to_paramstyle("SELECT :p", "format")  # type: ignore[arg-type]
    assert str(failed.value) == "unknown parameter style 'format'"
