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
