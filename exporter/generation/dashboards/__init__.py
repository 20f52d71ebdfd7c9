"""Grafana dashboards generated from the KPI spec: plain JSON, provisioning file and README.

boards.py builds the boards from the spec, rendering.py turns them into Grafana JSON and
files.py writes them."""
