"""Bad input, fuzzed in-process: spec texts and structures refused cleanly, and query results
whose exposition must always parse (prometheus-client's parsers)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse
from support.fuzzing import NASTY, SPECS, expected_label, must_refuse, result_rows

from exporter.collection.polls import KpiPoll
from exporter.serving.selfmetrics import SelfMetrics
from exporter.serving.snapshot import Snapshot
from exporter.sources.base import QueryError, Rows
from exporter.spec.loading import LoadedSpec, SpecError, load_spec

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
        {  # two polls of the */5 schedule: a ratio window must span two poll intervals
            "name": "pay_ratio",
            "good": "biz_payments_total",
            "total": ["biz_payments_total"],
            "window": "10m",
        }
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


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_random_text_is_refused_or_loaded(text: str) -> None:
    load_text(text)


@pytest.mark.slow
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


def _apart(paths: list[tuple[Any, ...]]) -> bool:
    """No path is another's prefix: each replacement lands where VALID has a node."""
    return all(a[: len(b)] != b for a in paths for b in paths if a is not b)


mutation_paths = st.lists(st.sampled_from(ALL_PATHS), min_size=1, max_size=3, unique=True)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutation_paths.filter(_apart).flatmap(
        lambda ps: st.tuples(*(st.tuples(st.just(p), trees) for p in ps))
    )
)
def test_mutated_valid_specs_are_refused_with_a_location(mutations: tuple[Any, ...]) -> None:
    """A valid spec with random values put at random places: loaded, or refused with a line.
    Every mutation applies (the paths are apart), so none is dropped unseen."""
    assert isinstance(load_text(yaml.safe_dump(VALID)), LoadedSpec)
    spec = yaml.safe_load(yaml.safe_dump(VALID))
    for path, replacement in mutations:
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = replacement
    result = load_text(yaml.safe_dump(spec, allow_unicode=True))
    if isinstance(result, SpecError):
        assert all(p.message for p in result.problems)


@pytest.mark.parametrize("name", sorted(NASTY))
def test_nasty_specs_are_refused_in_process(name: str) -> None:
    result = load_text(NASTY[name], f"{name}.yaml")
    assert isinstance(result, SpecError), f"{name} was accepted"
    assert not Path("/tmp/kpi-fuzz-pwned").exists()


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
            "a": expected_label(row[0]).encode("utf-8", "replace").decode(),
            "b": expected_label(row[1]).encode("utf-8", "replace").decode(),
        }
        assert sample.labels == expected_labels
        assert om_sample.labels == expected_labels
        assert sample.name == metric
        want = _expected_value(row[2])
        for got in (sample.value, om_sample.value):
            assert got == want or (math.isnan(got) and math.isnan(want))


@pytest.mark.slow
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
    refused = must_refuse(kind, rows)
    assert ok is not refused, (rows, poll.status.last_error)
    if refused:
        # refused: counted under reason=result (not an internal error), nothing published
        assert poll.status.last_reason == "result", poll.status.last_error
        assert counted == 1
        assert published == []
        return
    assert len(published) == 1
    nulls = sum(1 for row in rows if row[2] is None)
    assert counted == (1 if nulls else 0)  # skipped NULL values are counted too
    _check_parses(published[0], rows, kpi.name)


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
