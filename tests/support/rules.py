"""The rich rule spec and readers of generated rule files, shared by the rule tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT

COMMITTED = ROOT / "rules"
DEMO = ROOT / "config" / "demo.yaml"


RICH = """
exporter:
  namespace: shop
  labels: {service: billing, env: prod}
  job: billing-kpis
  runbook_url: https://runbooks.example.com/{alertname}
  scrape_interval: 30s
databases:
  app: {dsn: "sqlite:///x.db"}
kpis:
  - name: queue_depth
    type: gauge
    database: app
    interval: 90s
    query: SELECT queue, count(*) AS value FROM jobs GROUP BY queue
    labels: [queue]
    unit: seconds
    alerts:
      - {severity: warning, above: 100, for: 10m, aggregate: max}
      - {severity: critical, above: 1000, for: 3m, aggregate: max, by: [queue]}
      - {severity: info, below: 0.5, for: 90s, matchers: {queue: mail}}
    absent_for: 15m
    anomaly: {zscore: 3, window: 6h, for: 10m}
    forecast: {below: 0, near: 20, in: 4h, window: 2h, for: 5m}
  - name: orders_total
    type: counter
    database: app
    interval: 1m
    query: SELECT status, count(*) AS value FROM orders GROUP BY status
    labels: [status]
    alerts:
      - {severity: warning, increase: 1h, below: 10, for: 30m, aggregate: sum, by: [service]}
      - {severity: critical, above: 1000000, for: 5m}
      - severity: warning
        rate: 2m
        above: 0
        for: 2m
        matchers: {status: failed}
        name: OrdersFailing
        description: 'Orders fail at {{ $value }}/s ({{ $labels.status }}),
          {{ printf "%.3f" $value }}.'
    no_increase_for: 1h
  - name: requests_total
    type: counter
    database: app
    interval: 30s
    query: SELECT route, count(*) AS value FROM requests GROUP BY route
    labels: [route]
  - name: request_errors_total
    type: counter
    database: app
    interval: 30s
    query: SELECT route, count(*) AS value FROM requests WHERE failed GROUP BY route
    labels: [route]
  - name: payments_total
    type: counter
    database: app
    schedule: "*/5 * * * *"
    query: SELECT count(*) AS value FROM payments
ratios:
  - name: request_error_ratio
    good: shop_request_errors_total
    total: [shop_requests_total]
    window: 10m
    alerts: [{severity: critical, above: 0.05, for: 5m}]
  - name: availability_ratio
    good: shop_requests_total
    total: [shop_requests_total, shop_request_errors_total]
    slo: {objective: 99.9, period: 28d}
alerts:
  - name: NeverFires
    expr: vector(1) > 2
    severity: info
    kpi: queue_depth
    summary: Never.
    description: Never fires {{ $value }}.
"""


def rule_file_paths(out: Path) -> list[Path]:
    return [out / "prometheus_alerts.yaml", out / "prometheus_rules.yaml"]


def rule_groups(out: Path) -> list[dict]:
    return [g for path in rule_file_paths(out) for g in yaml.safe_load(path.read_text())["groups"]]


def generate(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`kpi-exporter generate rules -c config -o out`: the rules the generator writes now."""
    command = [sys.executable, "-m", "exporter.cli", "generate", "rules", "-c", str(config)]
    return subprocess.run(
        [*command, "-o", str(out), *extra], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def generated_demo_rules(out: Path) -> list[Path]:
    """The demo spec's rule files, generated into `out` (not the committed rules/)."""
    result = generate(DEMO, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return rule_file_paths(out)
