"""The metric names an alert's expr reads, which backtest probes for "no data"."""

from __future__ import annotations

from exporter.history.inputs import metric_names, probe


def test_names_without_functions_keywords_label_lists_or_literals() -> None:
    expr = (
        'sum by (job, kpi) (rate(orders_total{job="x", kpi=~"a|b"}[5m] offset 1h)) > 3\n'
        "and on (job) group_left (service)\n"
        '  absent_over_time(up{job="x"}[10m]) or vector(0) unless bool inf\n'
        'or label_replace(job:orders:rate5m, "to", "$1", "from", "(.*)") * 0'
    )
    assert metric_names(expr) == ["job:orders:rate5m", "orders_total", "up"]


def test_the_demo_freshness_burn_reads_its_two_windows() -> None:
    expr = (
        "job:revenue_usd_freshness:error_ratio_avg1h > 0.0144\n"
        "and\n"
        "job:revenue_usd_freshness:error_ratio_avg5m > 0.0144"
    )
    assert metric_names(expr) == [
        "job:revenue_usd_freshness:error_ratio_avg1h",
        "job:revenue_usd_freshness:error_ratio_avg5m",
    ]


def test_the_probe_covers_the_whole_window() -> None:
    assert probe("up", 1000.0, 4600.5) == ('group(last_over_time({__name__="up"}[3601s]))', 4600.5)
