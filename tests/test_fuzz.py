"""Bad input, fuzzed: spec files that must always be refused cleanly, and query results whose
exposition must always parse (prometheus-client's parsers and `promtool check metrics`)."""

from __future__ import annotations

import math
import resource
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from exporter.collection.polls import KpiPoll
from exporter.collection.series import ResultError, label_text, render_plain
from exporter.serving.selfmetrics import SelfMetrics
from exporter.serving.snapshot import Snapshot
from exporter.sources.base import QueryError, Rows
from exporter.spec.loading import LoadedSpec, SpecError, load_spec
from exporter.spec.model import Spec

SPEC_DIR = Path(tempfile.mkdtemp(prefix="kpi-fuzz-"))

VALID = {
    "exporter": {"labels": {"service": "fuzz"}, "namespace": "biz"},
    "databases": {"app": {"dsn": "sqlite:///fuzz.db", "max_connections": 2}},
    "kpis": [
        {
            "name": "orders",
            "type": "gauge",
            "database": "app",
            "interval": "30s",
            "query": "SELECT region, count(*) AS value FROM orders WHERE t > :now - 60",
            "labels": ["region"],
            "alerts": [{"severity": "warning", "above": 5}],
        },
        {
            "name": "payments_total",
            "type": "counter",
            "database": "app",
            "schedule": "*/5 * * * *",
            "cursor": "id",
            "query": "SELECT id, method FROM payments WHERE id > :cursor ORDER BY id LIMIT :batch",
            "labels": ["method"],
        },
    ],
    "ratios": [
        {"name": "pay_ratio", "good": "biz_payments_total", "total": ["biz_payments_total"]}
    ],
    "dashboards": [{"title": "D", "rows": [{"title": "R", "kpis": ["orders"]}]}],
}


def load_text(text: str | bytes, name: str = "spec.yaml") -> LoadedSpec | SpecError:
    """Load one spec file; any outcome but a LoadedSpec or a SpecError fails the test."""
    path = SPEC_DIR / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return load_spec([path], env={"HOME": "/root"})
    except SpecError as exc:
        assert exc.problems, "a SpecError without problems"
        for problem in exc.problems:
            assert str(problem).startswith(str(path)) or str(problem).startswith("<")
        return exc


# -- the spec loader -----------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["30s", "0s", "-1s", "1d", "5m", "le", "__x", "a b", "${NOPE}", "$$", "*"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), children, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text_is_refused_or_loaded(text: str) -> None:
    load_text(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_random_structures_are_refused_cleanly(tree: Any) -> None:
    result = load_text(yaml.safe_dump(tree, allow_unicode=True))
    if isinstance(tree, dict) and tree:
        assert isinstance(result, SpecError) or set(tree) <= {"exporter", "databases", "kpis"}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


ALL_PATHS = [p for p in _paths(VALID) if p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), trees), min_size=1, max_size=3))
def test_mutated_valid_specs_are_refused_with_a_location(mutations: list[Any]) -> None:
    """A valid spec with random values put at random places: loaded, or refused with a line."""
    assert isinstance(load_text(yaml.safe_dump(VALID)), LoadedSpec)
    spec = yaml.safe_load(yaml.safe_dump(VALID))
    for path, replacement in mutations:
        node = spec
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = replacement
        except (KeyError, IndexError, TypeError):
            continue
    result = load_text(yaml.safe_dump(spec, allow_unicode=True))
    if isinstance(result, SpecError):
        assert all(p.message for p in result.problems)


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


@pytest.mark.parametrize("name", sorted(NASTY))
def test_nasty_specs_are_refused_in_process(name: str) -> None:
    result = load_text(NASTY[name], f"{name}.yaml")
    assert isinstance(result, SpecError), f"{name} was accepted"
    assert not Path("/tmp/kpi-fuzz-pwned").exists()


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1024 * 1024 * 1024, 1024 * 1024 * 1024))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["billion_laughs", "python_object", "deep_flow_list", "deep_block", "huge_string"]
)
def test_check_command_exits_2_without_traceback(name: str, tmp_path: Path) -> None:
    """The CLI: exit 2 with a message, no traceback, within 60 s and 1 GiB of address space."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(NASTY[name])
    done = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert str(path) in done.stderr
    assert not Path("/tmp/kpi-fuzz-pwned").exists()


# -- query results -------------------------------------------------------------------------------

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


def _spec(kind: str) -> Spec:
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


SPECS = {kind: _spec(kind) for kind in ("gauge", "counter")}


class RowsSource:
    """A source that answers with the given rows."""

    name = "app"
    dialect = "sqlite"

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def query(self, sql: str, params: Any, timeout: float) -> Rows:
        return Rows(("a", "b", "value"), self.rows)

    def close(self) -> None:
        pass


def _expected_value(raw: Any) -> float:
    return 1.0 if raw is True else 0.0 if raw is False else float(raw)


def _check_parses(snapshot: Snapshot, rows: list[tuple[Any, ...]], metric: str) -> None:
    """Both parsers read back every series with its exact label values and value."""
    text = snapshot.text.decode("utf-8")
    parsed = [s for f in text_parse(text) for s in f.samples]
    om = snapshot.openmetrics.decode("utf-8") + "# EOF\n"
    om_samples = [s for f in om_parse(om) for s in f.samples]
    kept = [row for row in rows if row[2] is not None]
    assert len(parsed) == len(kept) == len(om_samples)
    for row, sample, om_sample in zip(kept, parsed, om_samples, strict=True):
        expected_labels = {
            "service": 'quo"te\\',
            "a": label_text(row[0]).encode("utf-8", "replace").decode(),
            "b": label_text(row[1]).encode("utf-8", "replace").decode(),
        }
        assert sample.labels == expected_labels
        assert om_sample.labels == expected_labels
        assert sample.name == metric
        want = _expected_value(row[2])
        for got in (sample.value, om_sample.value):
            assert got == want or (math.isnan(got) and math.isnan(want))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["gauge", "counter"]), result_rows)
def test_fuzzed_results_parse_or_are_refused_and_counted(kind: str, rows: list[Any]) -> None:
    spec = SPECS[kind]
    kpi = spec.kpis[0]
    metrics = SelfMetrics()
    published: list[Snapshot] = []
    poll = KpiPoll(spec, kpi, RowsSource(rows), metrics, published.append)
    ok = poll.run(force=True)
    counted = metrics.query_errors.labels(kpi.name, "app", "result")._value.get()
    if not ok:
        # refused: counted under reason=result (not an internal error), nothing published
        assert poll.status.last_reason == "result", poll.status.last_error
        assert counted == 1
        assert published == []
        with pytest.raises(ResultError):
            render_plain(
                kpi, kpi.name, dict(spec.exporter.labels), Rows(("a", "b", "value"), rows), 0
            )
        return
    assert len(published) == 1
    nulls = sum(1 for row in rows if row[2] is None)
    assert counted == (1 if nulls else 0)  # skipped NULL values are counted too
    _check_parses(published[0], rows, kpi.name)


@pytest.mark.promtool
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["gauge", "counter"]), result_rows)
def test_fuzzed_results_pass_promtool_check_metrics(kind: str, rows: list[Any]) -> None:
    promtool = tool("promtool")
    spec = SPECS[kind]
    kpi = spec.kpis[0]
    try:
        snapshot, _ = render_plain(
            kpi, kpi.name, dict(spec.exporter.labels), Rows(("a", "b", "value"), rows), 0
        )
    except ResultError:
        return
    done = subprocess.run(
        [promtool, "check", "metrics"], input=snapshot.text, capture_output=True, timeout=30
    )
    # promtool exits 1 when the text does not parse, 3 for lint advice only
    assert b"error while linting" not in done.stderr, done.stderr.decode(errors="replace")
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")


def test_query_error_reasons_are_never_result() -> None:
    """A source failure keeps its own reason; result is only for rows that do not fit."""
    spec = SPECS["gauge"]

    class Failing(RowsSource):
        def query(self, sql: str, params: Any, timeout: float) -> Rows:
            raise QueryError("sql", "syntax error")

    metrics = SelfMetrics()
    poll = KpiPoll(spec, spec.kpis[0], Failing([]), metrics, lambda s: None)
    assert poll.run(force=True) is False
    assert metrics.query_errors.labels("fuzz_value", "app", "sql")._value.get() == 1
    assert metrics.query_errors.labels("fuzz_value", "app", "result")._value.get() == 0
