"""`_created` samples: in OpenMetrics only (Prometheus stores each text-format one as a series)."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

from exporter.collection.series import Shape
from exporter.collection.totals import Totals
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.base import Rows
from exporter.spec.model import Kpi

BASE = {"database": "app", "interval": "1m", "labels": ["queue"], "cursor": "id"}


def rendered(kpi: Kpi, rows: Rows) -> tuple[str, str]:
    """(text, OpenMetrics) of one batch of rows accumulated at t=1000."""
    shape = Shape(kpi, kpi.name, {"service": "shop"}, rows)
    totals = Totals(kpi)
    totals.merge(totals.stage(shape, rows.rows, now=1000.0))
    snapshot = totals.render(shape, 2000.0)
    return snapshot.text.decode(), snapshot.openmetrics.decode()


def test_cursor_counter() -> None:
    kpi = Kpi.model_validate(
        {
            **BASE,
            "name": "jobs_total",
            "help": "Jobs done.",
            "type": "counter",
            "query": "SELECT id, queue FROM jobs WHERE id > :cursor ORDER BY id LIMIT :batch",
        }
    )
    text, om = rendered(kpi, Rows(("id", "queue"), [(1, "a"), (2, "a"), (3, "b")]))
    assert text == (
        "# HELP jobs_total Jobs done.\n"
        "# TYPE jobs_total counter\n"
        'jobs_total{service="shop",queue="a"} 2.0\n'
        'jobs_total{service="shop",queue="b"} 1.0\n'
    )
    assert om == (
        "# HELP jobs Jobs done.\n"
        "# TYPE jobs counter\n"
        'jobs_total{service="shop",queue="a"} 2.0\n'
        'jobs_created{service="shop",queue="a"} 1000.0\n'
        'jobs_total{service="shop",queue="b"} 1.0\n'
        'jobs_created{service="shop",queue="b"} 1000.0\n'
    )
    assert len(list(om_parse(om + "# EOF\n"))) == 1  # valid OpenMetrics


def test_cursor_histogram() -> None:
    kpi = Kpi.model_validate(
        {
            **BASE,
            "name": "job_seconds",
            "type": "histogram",
            "buckets": [1],
            "value": "seconds",
            "query": "SELECT id, queue, seconds FROM jobs WHERE id > :cursor LIMIT :batch",
        }
    )
    text, om = rendered(kpi, Rows(("id", "queue", "seconds"), [(1, "a", 0.5), (2, "a", 3.0)]))
    samples = (
        'job_seconds_bucket{service="shop",queue="a",le="1.0"} 1\n'
        'job_seconds_bucket{service="shop",queue="a",le="+Inf"} 2\n'
        'job_seconds_count{service="shop",queue="a"} 2\n'
        'job_seconds_sum{service="shop",queue="a"} 3.5\n'
    )
    assert text == "# TYPE job_seconds histogram\n" + samples
    assert om == (
        "# TYPE job_seconds histogram\n"
        + samples
        + 'job_seconds_created{service="shop",queue="a"} 1000.0\n'
    )
    assert len(list(om_parse(om + "# EOF\n"))) == 1


def test_self_metrics() -> None:
    metrics = SelfMetrics()
    metrics.scrapes.labels("text").inc()
    metrics.query_duration.labels("orders", "app").observe(0.2)
    text = metrics.render(openmetrics=False).decode()
    om = metrics.render(openmetrics=True).decode()
    assert "_created" not in text
    assert 'kpi_exporter_scrapes_total{format="text"} 1.0\n' in text
    assert 'kpi_exporter_query_duration_seconds_count{database="app",kpi="orders"} 1.0\n' in text
    assert 'kpi_exporter_scrapes_created{format="text"} ' in om
    assert 'kpi_exporter_query_duration_seconds_created{database="app",kpi="orders"} ' in om
