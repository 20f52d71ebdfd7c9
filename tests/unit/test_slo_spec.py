"""Latency and freshness SLOs in the spec: what is refused, with file, line, KPI and field;
the `le` value the rules select is the one the exporter writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.specs import BASE, kpi, write

from exporter.conventions import le_value
from exporter.serving.exposition import format_value
from exporter.spec.loading import SpecError, load_spec

HISTOGRAM = """\
  - name: checkout_seconds
    type: histogram
    database: app
    interval: 30s
    cursor: id
    query: SELECT id, seconds AS value FROM checkouts WHERE id > :cursor ORDER BY id LIMIT :batch
    buckets: [0.5, 1, 2.5, 30]
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec([write(tmp_path, text)], env={})
    return [str(p) for p in caught.value.problems]


def test_latency_slo_loads(tmp_path: Path) -> None:
    text = BASE + HISTOGRAM + "    slo: {objective: 0.99, latency: 30s, window: 28d}\n"
    slo = load_spec([write(tmp_path, text)], env={}).spec.kpi("checkout_seconds").slo
    assert slo is not None
    assert (slo.objective, slo.latency, slo.window, slo.min_events) == (0.99, 30, 28 * 86400, 20)


def test_latency_without_its_bucket_is_located(tmp_path: Path) -> None:
    text = BASE + HISTOGRAM + "    slo: {objective: 0.99, latency: 2s}\n"
    found = problems(tmp_path, text)
    # BASE is 11 lines, the histogram's 7 more: `slo:` is line 19
    assert found == [
        f"{tmp_path / 'spec.yaml'}:19: kpis[1].slo.latency: 2s is not a bucket bound of "
        "checkout_seconds (0.5, 1, 2.5, 30): the SLO counts the events of the bucket at its "
        "latency; add it to 'buckets' (KPI 'checkout_seconds')"
    ]


@pytest.mark.parametrize(
    ("extra", "kind", "message"),
    [
        (
            "slo: {objective: 0.99, latency: 1s}",
            "gauge",
            "kpis[1].slo: a KPI's slo is a latency SLO, for histograms; bad_kpi is a gauge",
        ),
        (
            "freshness: {max_age: 30s, objective: 0.999}",
            "gauge",
            "kpis[1].freshness.max_age: max_age 30s is under 2 poll intervals of bad_kpi",
        ),
        (
            "freshness: {max_age: 10m, objective: 99.9}",
            "gauge",
            "kpis[1].freshness.objective: objective is the share of good events or time, above 0 "
            "and below 1 (0.99 for 99%), not 99.9",
        ),
        (
            "freshness: {max_age: 10m, objective: 0.9, name: NotCamel_case}",
            "gauge",
            "kpis[1].freshness.name:",
        ),
        (
            "freshness: {max_age: 10m, objective: 0.9}",
            "gauge",
            "kpis[1].freshness.name: the alert name "
            "AVeryLongKpiNameForFreshnessFreshnessBudgetBurn is longer than 40 characters",
        ),
    ],
)
def test_refused(tmp_path: Path, extra: str, kind: str, message: str) -> None:
    name = "a_very_long_kpi_name_for_freshness" if "0.9}" in extra else "bad_kpi"
    found = problems(tmp_path, kpi(extra, name=name, kind=kind).replace("bad_kpi", name))
    assert any(message.replace("bad_kpi", name) in p for p in found), found
    assert all(":17: " in p for p in found), found  # the SLO's own line (BASE + 5)


@pytest.mark.parametrize("bound", [0.005, 0.25, 1, 2.5, 30, 120, 1e-5, 1e21])
def test_le_value_is_what_the_exporter_writes(bound: float) -> None:
    assert le_value(bound) == format_value(bound)
