"""Runbooks: one page per generated alert, linked from its runbook_url, secrets kept out."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import ROOT

from exporter.generation.runbooks import render
from exporter.spec.loading import load_spec

DEMO = ROOT / "config" / "demo.yaml"
RUNBOOKS = ROOT / "runbooks"


def _committed_alerts() -> dict[str, list[dict]]:
    alerts: dict[str, list[dict]] = {}
    document = yaml.safe_load((ROOT / "rules" / "prometheus_alerts.yaml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            alerts.setdefault(rule["alert"], []).append(rule)
    return alerts


def test_committed_runbooks_are_current() -> None:
    """`runbooks/` is exactly what config/demo.yaml generates now (run `make generate`)."""
    files = render(load_spec([DEMO]).spec)
    committed = {p.name: p.read_text(encoding="utf-8") for p in RUNBOOKS.glob("*.md")}
    assert committed == files


def test_every_alert_links_to_its_page() -> None:
    alerts = _committed_alerts()
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == set(alerts)
    for name, rules in alerts.items():
        for rule in rules:
            assert rule["annotations"]["runbook_url"] == f"runbooks/{name}.md", name


def test_kpi_page_shows_its_query_database_and_silence() -> None:
    raw = yaml.safe_load(DEMO.read_text())
    query = next(k["query"] for k in raw["kpis"] if k["name"] == "payment_failures_total")
    page = (RUNBOOKS / "PaymentFailures.md").read_text()
    assert query.strip() in page
    assert "database `app`" in page
    assert 'kpi=~"payment_failures_total"' in page  # the self-metrics to look at first
    assert "amtool silence add alertname=PaymentFailures job=kpi-exporter" in page
    for reason in ("timeout", "pool", "connection", "sql", "result"):
        assert f"- `{reason}`:" in page


def test_ratio_page_lists_its_counters_queries() -> None:
    page = (RUNBOOKS / "GenerationSuccessErrorBudgetBurn.md").read_text()
    assert "### generation_success_total" in page and "### generation_failure_total" in page
    assert page.count("- **critical**") == 2 and page.count("- **warning**") == 2


def test_dsn_secrets_never_reach_a_page(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        """databases:
  app: {dsn: "postgresql://reader:s3cr3t-pw@db.internal:5432/shop"}
kpis:
  - name: depth
    type: gauge
    database: app
    interval: 1m
    query: SELECT 1 AS value
    alerts: [{severity: warning, above: 5, for: 5m}]
"""
    )
    files = render(load_spec([path]).spec)
    assert set(files) >= {"DepthHigh.md", "KpiExporterDown.md", "README.md"}
    for text in files.values():
        assert "s3cr3t" not in text and "reader" not in text and "db.internal" not in text
    assert "database `app` (postgresql)" in files["DepthHigh.md"]
