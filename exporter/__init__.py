"""kpi-exporter: business-database KPIs as Prometheus metrics, rules and dashboards."""

__version__ = "0.1.0"
