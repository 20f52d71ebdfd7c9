"""Hypothesis strategies and specs shared by the in-process and the subprocess fuzz tests."""

from __future__ import annotations

from decimal import Decimal

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
