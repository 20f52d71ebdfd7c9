"""Grafana dashboards generated from the KPI spec: plain JSON, provisioning file and README.

boards.py builds the boards from the spec (red.py their RED row), layout.py fills the grid
lines and drops repeated panels, rendering.py turns them into Grafana JSON and files.py writes
them."""
