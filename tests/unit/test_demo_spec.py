"""The demo spec: covers the brief, portable queries, cursor order."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from exporter.spec.loading import load_spec
from exporter.spec.model import Spec
from exporter.spec.params import placeholders

DEMO_SPEC = ROOT / "config" / "demo.yaml"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec([DEMO_SPEC]).spec


class TestDemoSpec:
    def test_loads_and_covers_the_brief(self, spec: Spec) -> None:
        names = {kpi.name for kpi in spec.kpis}
        brief = {
            "active_users",
            "generation_success_total",
            "generation_failure_total",
            "token_spend_total",
            "payment_conversions_total",
            "payment_failures_total",
            "queue_failures_total",
            "queue_job_duration_seconds",
            "queue_active_jobs",
            "http_requests_total",
            "http_request_duration_seconds",
            "errors_total",
            "revenue_usd_total",
            "transactions_total",
            "new_users_24h",
            "active_users_24h",
            "churned_users",
            "user_retention_ratio",
            "feature_usage_total",
        }
        assert brief <= names
        assert spec.exporter.port == 9091
        assert spec.exporter.labels == {"service": "demo"}
        assert all(kpi.help for kpi in spec.kpis)
        assert all(5 <= (kpi.interval or 0) <= 30 for kpi in spec.kpis)
        assert {d.title for d in spec.dashboards} == {
            "Service Overview",
            "Business KPIs",
            "Queue Monitoring",
        }
        alerts = {a.name for kpi in spec.kpis for a in kpi.alerts}
        alerts |= {a.name for ratio in spec.ratios for a in ratio.alerts}
        alerts |= {a.name for a in spec.alerts}
        assert alerts == {
            "HighErrorRate",
            "CriticalErrorRate",
            "HighQueueFailureRate",
            "PaymentFailures",
            "LowGenerationSuccessRate",
            "HighResponseTime",
        }

    def test_queries_are_portable(self, spec: Spec) -> None:
        for kpi in spec.kpis:
            assert "::" not in kpi.query, kpi.name
            assert "%" not in kpi.query, kpi.name
            assert "service" not in kpi.labels, kpi.name

    def test_cursor_queries_read_in_cursor_order(self, spec: Spec) -> None:
        for kpi in (k for k in spec.kpis if k.cursor is not None):
            order = kpi.cursor if kpi.tiebreak is None else f"{kpi.cursor}, {kpi.tiebreak}"
            assert re.search(rf"ORDER BY {order} LIMIT :batch\s*$", kpi.query), kpi.name
            if kpi.tiebreak is not None:
                assert kpi.settle is not None and "settled" in placeholders(kpi.query)


QUANTILE_ALERT = re.compile(r"histogram_quantile\(\s*([0-9.]+),.*?\)\s*\)\s*>\s*([0-9.]+)", re.S)


def test_one_objective_per_kpi(spec: Spec) -> None:
    """Issue 13, finding 9: a KPI's SLO, dashboard target and alert thresholds name one
    objective. Old demo: generation success had a 99% SLO, a 95% target and a 90% alert;
    http_request_duration_seconds a 2.5 s latency SLO and a p95 > 2 s alert."""
    checked = 0
    for ratio in spec.ratios:
        if ratio.slo is None:
            continue
        objective = ratio.slo.objective / 100
        assert ratio.target is not None and ratio.target.value == objective, ratio.name
        assert [t.below for t in ratio.alerts] == [objective] * len(ratio.alerts), ratio.name
        checked += 1
    for kpi in spec.kpis:
        if kpi.slo is None:
            continue
        alerts = [a for a in spec.alerts if a.kpi == kpi.name]
        for alert in alerts:
            found = QUANTILE_ALERT.search(alert.expr)
            assert found, alert.expr
            assert (float(found.group(1)), float(found.group(2))) == (
                kpi.slo.objective,
                kpi.slo.latency,
            ), alert.name
        checked += len(alerts)
    assert checked == 2  # generation_success_ratio; HighResponseTime on the request latency
