"""History: backfill of past KPI values into Prometheus blocks, and reconciliation."""
