"""Prometheus alerting and recording rules generated from the KPI spec; build.py assembles them."""
