"""The dashboard rows of latency and freshness SLOs: the same four panels as a ratio's SLO,
reading the records the rules generator writes for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.dashboards import panels_of, placed
from support.slos import SPEC

from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.rendering import render_board
from exporter.generation.rules.build import build_rules
from exporter.spec.loading import load_spec


@pytest.fixture
def board(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    spec = load_spec([path]).spec
    return render_board(boards(spec)[0])  # All KPIs: the spec has no dashboards


def test_rows_and_queries(board: dict[str, Any]) -> None:
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == [
        "Gauges",
        "SLO: Open orders freshness",
        "SLO: Tenant orders freshness",
        "Histograms",
        "SLO: Checkout latency",
        "SLO: Checkout freshness",
    ]
    panels = {p["title"]: p for p in panels_of(board)}
    exprs = {title: [t["expr"] for t in p["targets"]] for title, p in panels.items()}
    # the same objective, 0.99, told apart by the SLO's name
    assert exprs["Open orders freshness SLO objective"] == [
        'label_replace(vector(0.99), "slo", "open_orders-freshness", "", "")'
    ]
    assert exprs["Checkout latency SLO objective"] == [
        'label_replace(vector(0.99), "slo", "checkout_seconds-latency", "", "")'
    ]
    assert exprs["Checkout freshness SLO objective"] == [
        'label_replace(vector(0.999), "slo", "checkout_seconds-freshness", "", "")'
    ]
    assert exprs["Checkout latency SLI (4w)"] == [
        '1 - job:checkout_seconds_latency:error_ratio_rate4w{job=~"$job"}'
    ]
    assert exprs["Checkout latency burn rate"] == [
        'job:checkout_seconds_latency:error_ratio_rate1h{job=~"$job"} / 0.01',
        'job:checkout_seconds_latency:error_ratio_rate6h{job=~"$job"} / 0.01',
    ]
    assert panels["Checkout latency burn rate"]["targets"][0]["legendFormat"] == "{{step}} 1h"
    assert exprs["Open orders freshness error budget remaining"] == [
        'job:open_orders_freshness:error_budget_remaining{job=~"$job"}'
    ]
    assert exprs["Open orders freshness SLI (1w)"] == [
        '1 - job:open_orders_freshness:error_ratio_avg1w{job=~"$job"}'
    ]
    # a KPI on several databases: a freshness SLO per database
    legend = panels["Tenant orders freshness burn rate"]["targets"][0]["legendFormat"]
    assert legend == "{{database}} 1h"
    # 99% over 1w: a 1h page at 2% of the week's budget is a burn rate of 3.36
    steps = panels["Open orders freshness burn rate"]["fieldConfig"]["defaults"]["thresholds"]
    assert [s["value"] for s in steps["steps"]] == [None, pytest.approx(0.1 * 7 / 3), 1.4]


def test_panels_read_generated_records(board: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "again.yaml"
    path.write_text(SPEC)
    recorded = {r.record for g in build_rules(load_spec([path]).spec).records for r in g.rules}
    read = {
        t["expr"].split("{")[0].removeprefix("1 - ")
        for p in panels_of(board)
        if p["title"].endswith(("SLI (4w)", "SLI (30d)", "SLI (1w)", "remaining", "burn rate"))
        for t in p["targets"]
    }
    assert read and read <= recorded, read - recorded


def test_each_slo_keeps_its_objective_panel(board: dict[str, Any]) -> None:
    """Three SLOs of the spec share the objective 0.99 (checkout latency, open orders and
    tenant orders freshness): each SLO row shows its own objective; before, the first one's
    `vector(0.99)` counted as a duplicate of the others and they lost theirs."""
    by_row: dict[str, list[str]] = {}
    for row, panel in placed(board):
        if row is not None and row.startswith("SLO: "):
            by_row.setdefault(row.removeprefix("SLO: "), []).append(panel["title"])
    assert sorted(by_row) == [
        "Checkout freshness",
        "Checkout latency",
        "Open orders freshness",
        "Tenant orders freshness",
    ]
    for slo, titles in by_row.items():
        assert len(titles) == 4 and titles[1].startswith(f"{slo} SLI ("), titles
        assert [titles[0], *titles[2:]] == [
            f"{slo} SLO objective",
            f"{slo} error budget remaining",
            f"{slo} burn rate",
        ]
