"""The demo and kitchen-sink specs the dashboard tests render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter.spec.loading import load_spec
from exporter.spec.model import Spec

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


# Every panel kind, namespace and constant labels, alert matchers with a quote, an increase
# threshold, targets in both directions, an SLO, and KPIs that no dashboard lists.
KITCHEN_SINK = """\
exporter:
  namespace: shop
  labels: {service: billing, team: payments}
databases:
  app:
    dsn: sqlite:///app.db
kpis:
  - name: queue_depth
    help: Jobs waiting, by queue
    type: gauge
    database: app
    interval: 30s
    query: SELECT queue, 1 AS value FROM jobs
    labels: [queue]
    alerts:
      - {severity: warning, above: 100}
      - {severity: critical, above: 500}
    target: {value: 50, direction: below}
  - name: pending_refunds
    type: gauge
    database: app
    interval: 30s
    query: SELECT region, 1 AS value FROM refunds
    labels: [region]
    panel: table
  - name: cart_size
    type: gauge
    database: app
    interval: 30s
    query: SELECT 1 AS value
    panel: heatmap
  - name: conversion_ratio_now
    type: gauge
    database: app
    interval: 30s
    unit: ratio
    query: SELECT 0.5 AS value
    panel: timeseries
    alerts: [{severity: critical, below: 0.2}]
  - name: orders_total
    help: Orders placed.
    type: counter
    database: app
    interval: 30s
    query: SELECT status, 1 AS value FROM orders
    labels: [status]
    alerts:
      - {severity: warning, rate: 5m, above: 10}
      - {severity: critical, rate: 5m, above: 1, matchers: {status: 'fai"led'}}
      - {severity: critical, increase: 10m, above: 60}
    target: {value: 2, direction: above}
    panel: table
  - name: refunds_total
    type: counter
    database: app
    interval: 30s
    unit: usd
    query: SELECT region, 1 AS value FROM refunds
    labels: [region]
    panel: bargauge
  - name: logins_total
    type: counter
    database: app
    interval: 30s
    unit: logins
    query: SELECT 1 AS value
    panel: timeseries
  - name: failed_orders_total
    type: counter
    database: app
    interval: 30s
    query: SELECT status, 1 AS value FROM orders
    labels: [status]
  - name: checkout_seconds
    help: Checkout duration.
    type: histogram
    database: app
    interval: 30s
    unit: seconds
    query: SELECT step, le, 1 AS value FROM checkout
    labels: [step]
    panel: stat
  - name: page_bytes
    type: histogram
    database: app
    interval: 30s
    unit: bytes
    query: SELECT le, 1 AS value FROM pages
    panel: heatmap
    target: {value: 100000, direction: below}
ratios:
  - name: order_success_ratio
    help: Orders that did not fail
    good: shop_orders_total
    total: [shop_orders_total, shop_failed_orders_total]
    alerts: [{severity: warning, below: 0.9}]
    slo: {objective: 99.5, period: 28d}
    target: {value: 0.95}
  - name: refund_share_ratio
    good: shop_refunds_total
    total: [shop_orders_total]
    panel: stat
dashboards:
  - title: Shop / Overview!
    rows:
      - title: Orders
        kpis: [orders_total, order_success_ratio, queue_depth]
  - title: Same uid
    uid: kpi-exporter-health
    rows:
      - title: Refunds
        kpis: [refunds_total, pending_refunds]
      - title: Derived
        kpis: [job:shop_orders:rate5m, step:shop_checkout_seconds:p99_rate5m,
               job:shop_refunds_usd:sum_rate1h, instance:shop_queue_depth:max]
alerts:
  - name: SlowCheckout
    kpi: checkout_seconds
    expr: |
      histogram_quantile(0.95,
        sum by (le, step) (rate(shop_checkout_seconds_bucket{job="kpi-exporter"}[5m]))) > 2
    severity: warning
    summary: A checkout step is slow.
    description: 'p95 of {{ $labels.step }} is {{ $value }}.'
  - name: VerySlowCheckout
    kpi: checkout_seconds
    expr: histogram_quantile(0.99, sum by (le) (rate(shop_checkout_seconds_bucket[5m]))) >= 5
    severity: critical
    summary: Checkout is very slow.
    description: 'p99 is {{ $value }}.'
  - name: SlowPaymentStep
    kpi: checkout_seconds
    expr: |
      histogram_quantile(0.95,
        sum by (le) (rate(shop_checkout_seconds_bucket{step="pay"}[5m]))) > 1
    severity: critical
    summary: The payment step is slow (one step only, so no panel threshold).
    description: 'p95 is {{ $value }}.'
records:
  - record: job:shop_orders:rate5m
    help: Orders per second
    expr: sum without (instance) (rate(shop_orders_total{job="kpi-exporter"}[5m]))
  - record: step:shop_checkout_seconds:p99_rate5m
    expr: |
      histogram_quantile(0.99,
        sum by (le, step) (rate(shop_checkout_seconds_bucket{job="kpi-exporter"}[5m])))
  - record: job:shop_refunds_usd:sum_rate1h
    help: Refunds per hour.
    expr: sum by (job) (rate(shop_refunds_total{job="kpi-exporter"}[1h])) * 3600
    labels: {tier: gold}
  - record: instance:shop_queue_depth:max
    expr: max by (job, instance, queue) (shop_queue_depth{job="kpi-exporter"})
  - record: job:shop_refund_share:ratio_percent
    help: Refunds per order, in percent (unlisted, so on All KPIs)
    expr: |
      label_replace(sum by (job) (rate(shop_refunds_total[5m])), "x", "y", "", "")
      / on (job) sum by (job) (rate(shop_orders_total[5m])) * 100
"""


def kitchen_sink(tmp_path: Path) -> Spec:
    path = tmp_path / "sink.yaml"
    path.write_text(KITCHEN_SINK)
    return load_spec([path]).spec


def demo_spec() -> Spec:
    return load_spec([DEMO]).spec


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel but the row headers, the panels nested in collapsed rows included."""
    return [panel for _, panel in placed(dashboard)]


def placed(dashboard: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(row title, panel) of every panel in reading order; panels before any row have None."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    row = None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            found.extend((row, nested) for nested in panel.get("panels", []))
        else:
            found.append((row, panel))
    return found


# A second, small spec in another shape than the demo's: no namespace, a request counter that
# is not named "requests", its errors as a ratio with a critical and a warning alert over a
# 10m window, a latency histogram whose unit comes from its name only, and a dashboard
# without any histogram (no RED row).
SMALL = """\
exporter:
  labels: {service: api}
databases:
  app:
    dsn: sqlite:///app.db
kpis:
  - name: api_calls_total
    help: API calls answered.
    type: counter
    database: app
    interval: 30s
    query: SELECT endpoint, 1 AS value FROM calls
    labels: [endpoint]
  - name: api_call_failures_total
    type: counter
    database: app
    interval: 30s
    query: SELECT endpoint, 1 AS value FROM failures
    labels: [endpoint]
  - name: api_latency_seconds
    type: histogram
    database: app
    interval: 30s
    query: SELECT endpoint, le, 1 AS value FROM latency
    labels: [endpoint]
  - name: bytes_sent_total
    type: counter
    database: app
    interval: 30s
    unit: bytes
    query: SELECT 1 AS value
  - name: inflight
    type: gauge
    database: app
    interval: 30s
    query: SELECT 1 AS value
    target: {value: 100, direction: below}
ratios:
  - name: api_success_ratio
    good: api_calls_total
    total: [api_calls_total, api_call_failures_total]
    window: 10m
    alerts:
      - {severity: warning, below: 0.99}
      - {severity: critical, below: 0.95}
    target: {value: 0.995}
alerts:
  - name: SlowApi
    kpi: api_latency_seconds
    expr: histogram_quantile(0.95, sum by (le) (rate(api_latency_seconds_bucket[5m]))) > 0.5
    severity: warning
    summary: The API is slow.
    description: 'p95 is {{ $value }}.'
dashboards:
  - title: API
    rows:
      - title: Calls
        kpis: [api_calls_total, api_call_failures_total, api_success_ratio]
      - title: Latency
        kpis: [api_latency_seconds]
  - title: Capacity
    rows:
      - title: Now
        kpis: [inflight]
      - title: Traffic
        kpis: [bytes_sent_total]
"""


def small_spec(tmp_path: Path) -> Spec:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return load_spec([path]).spec


def spec_named(name: str, tmp_path: Path) -> Spec:
    """The demo, small or kitchen-sink spec."""
    if name == "demo":
        return demo_spec()
    return small_spec(tmp_path) if name == "small" else kitchen_sink(tmp_path)
