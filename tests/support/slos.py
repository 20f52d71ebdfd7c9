"""A spec with a latency SLO and freshness SLOs (a cursor histogram, a gauge, a gauge on two
databases), shared by the SLO rule and dashboard tests."""

from __future__ import annotations

SPEC = """\
exporter:
  labels: {service: shop}
  job: shop-kpis
databases:
  app: {dsn: "sqlite:///x.db"}
  tenant_a: {dsn: "sqlite:///a.db"}
  tenant_b: {dsn: "sqlite:///b.db"}
kpis:
  - name: checkout_seconds
    type: histogram
    database: app
    interval: 30s
    cursor: id
    query: SELECT id, step, seconds AS value FROM checkouts WHERE id > :cursor ORDER BY id
      LIMIT :batch
    labels: [step]
    buckets: [0.5, 1, 2.5, 30]
    slo: {objective: 0.99, latency: 2.5s, window: 28d}
    freshness: {max_age: 10m, objective: 0.999}
  - name: open_orders
    type: gauge
    database: app
    interval: 1m
    query: SELECT count(*) AS value FROM orders
    freshness: {max_age: 5m, objective: 0.99, window: 7d}
  - name: tenant_orders
    type: gauge
    database: "tenant_*"
    interval: 1m
    query: SELECT count(*) AS value FROM orders
    freshness: {max_age: 5m, objective: 0.99}
"""
