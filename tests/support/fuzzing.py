"""Hypothesis strategies and specs shared by the in-process and the subprocess fuzz tests."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from exporter.spec.model import Spec

NASTY = {
    "billion_laughs": "\n".join(
        [
            'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
            *(
                f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            ),
        ]
    ),
    "recursive_alias": "a: &a [*a]\n",
    "python_object": "exporter: !!python/object/apply:os.system ['touch /tmp/kpi-fuzz-pwned']\n",
    "python_name": "kpis: !!python/name:os.system\n",
    "deep_flow_list": "[" * 20_000 + "]" * 20_000,
    "deep_flow_map": "{a: " * 5_000 + "1" + "}" * 5_000,
    "deep_block": "".join(" " * i + "a:\n" for i in range(3_000)) + " " * 3_000 + "b: 1\n",
    "huge_string": "exporter:\n  port: " + "x" * 3_000_000 + "\n",
    "huge_key": "x" * 1_000_000 + ": 1\n",
    "too_large_file": "# " + "x" * (5 * 1024 * 1024) + "\n",
    "binary": "\x00\xff\xfe garbage \x1b[31m",
    "many_documents": "a: 1\n---\nb: 2\n",
    "not_a_mapping": "- 1\n- 2\n",
    "tab_indent": "exporter:\n\tport: 1\n",
    "huge_int": "exporter:\n  port: " + "9" * 5000 + "\n",
    "merge_bomb": "\n".join(
        ["a: &a {x: 1, y: 2}"] + [f"k{n}: &k{n} {{<<: [*a], z{n}: {n}}}" for n in range(200)]
    ),
}


label_cells = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(['"', "\\", "\n", '\\n"', "\x00", "\ud800", "é", "}", '{a="b"}', " "]),
    st.binary(max_size=20),  # invalid UTF-8 from bytea / BLOB columns
    st.integers(),
    st.floats(allow_nan=True),
    st.decimals(allow_nan=True),
    st.booleans(),
    st.just("x" * 65536),
)


value_cells = st.one_of(
    st.none(),
    st.integers(),
    st.integers(min_value=2**1000, max_value=2**1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=10),
    st.binary(max_size=4),
    st.sampled_from([Decimal("sNaN"), Decimal("-1e400"), 10**400, -(10**400), "1.5"]),
)


result_rows = st.lists(st.tuples(label_cells, label_cells, value_cells), max_size=8)


def fuzz_spec(kind: str) -> Spec:
    name = "fuzz_total" if kind == "counter" else "fuzz_value"
    return Spec.model_validate(
        {
            "exporter": {"labels": {"service": 'quo"te\\'}},
            "databases": {"app": {"dsn": "sqlite:///unused.db"}},
            "kpis": [
                {
                    "name": name,
                    "help": 'Fuzzed "help" with a \\ backslash\nand a newline',
                    "type": kind,
                    "database": "app",
                    "interval": "1m",
                    "query": "SELECT a, b, value FROM t",
                    "labels": ["a", "b"],
                }
            ],
        }
    )


SPECS = {kind: fuzz_spec(kind) for kind in ("gauge", "counter")}


# An independent reference of what a query result must become, written from the README (label
# columns: NULL becomes the empty value; a NULL value skips its row) and the exposition format,
# not from exporter.collection.series: the fuzz tests compare the exporter with it.


def expected_label(cell: Any) -> str:
    """The label value a result cell must give: NULL empty, bytes as UTF-8 (bad bytes as
    U+FFFD), a whole float without its '.0' (2.0 -> '2'), everything else as Python prints it."""
    if cell is None:
        return ""
    if isinstance(cell, bytes):
        return cell.decode("utf-8", "replace")
    if isinstance(cell, float) and math.isfinite(cell) and cell == math.floor(cell):
        return str(int(cell))
    return cell if isinstance(cell, str) else str(cell)


def must_refuse(kind: str, rows: list[tuple[Any, Any, Any]]) -> bool:
    """Whether (a, b, value) rows must be refused as a whole: a value that is not a number
    (int, float, Decimal or bool) or beyond a float, a counter's negative or NaN value, or two
    kept rows (value not NULL) with the same label values."""
    labels = []
    for a, b, value in rows:
        if value is None:
            continue
        if type(value) not in (int, float, Decimal, bool):
            return True
        try:
            number = float(value)
        except (OverflowError, ValueError):  # 10**400, Decimal("sNaN")
            return True
        if kind == "counter" and (number < 0 or math.isnan(number)):
            return True
        labels.append((expected_label(a), expected_label(b)))
    return len(set(labels)) != len(labels)
