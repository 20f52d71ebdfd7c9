"""Threshold and ratio alerts built from a spec, against the PromQL and wording written out by
hand: a flipped operator, a halved bound or a summary out of step with its bound fails here
(issue 14's surviving threshold mutations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.generation.rules.ratios import ratio_threshold_alert
from exporter.generation.rules.thresholds import threshold_alert, value_format
from exporter.spec.loading import load_spec
from exporter.spec.model import Spec

SPEC = """\
databases:
  app:
    dsn: sqlite:///app.db
kpis:
  - name: queue_depth
    type: gauge
    database: app
    interval: 30s
    unit: jobs
    query: SELECT 1 AS value
    alerts:
      - {severity: warning, above: 100, for: 10m}
      - {severity: info, below: 0.5, for: 90s}
  - name: errors_total
    type: counter
    database: app
    interval: 30s
    query: SELECT 1 AS value
    alerts:
      - {severity: critical, rate: 5m, above: 2.5, for: 1m}
      - {severity: warning, increase: 1h, below: 10, for: 30m}
  - name: requests_total
    type: counter
    database: app
    interval: 30s
    labels: [queue]
    query: SELECT 'q' AS queue, 1 AS value
    alerts:
      - {severity: warning, increase: 5m, above: 3, for: 2m, by: [queue]}
  - name: jobs_waiting
    type: gauge
    database: app
    interval: 30s
    labels: [queue, tier]
    query: SELECT 'q' AS queue, 'a' AS tier, 1 AS value
    alerts:
      - {severity: warning, above: 5, for: 1m, aggregate: min, matchers: {queue: mail, tier: a}}
      - {severity: critical, above: 50, for: 1m, by: [queue]}
  - name: failed_requests_total
    type: counter
    database: app
    interval: 30s
    labels: [queue]
    query: SELECT 'q' AS queue, 1 AS value
ratios:
  - name: success_ratio
    good: requests_total
    total: [requests_total, failed_requests_total]
    window: 10m
    min_events: 20
    alerts:
      - {severity: critical, below: 0.9, for: 5m}
      - {severity: warning, above: 0.99, for: 5m, by: [queue], matchers: {queue: mail}}
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    path: Path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(SPEC)
    return load_spec([path]).spec


# (kpi, alert index) -> (name, expr, for seconds, summary, description)
KPI_ALERTS = {
    ("jobs_waiting", 0): (
        "JobsWaitingHigh",
        'min without (instance) (jobs_waiting{job="kpi-exporter", queue="mail", tier="a"}) > 5',
        60.0,
        "Jobs waiting with queue=mail, tier=a is above 5.",
        "Jobs waiting with queue=mail, tier=a is {{ $value | humanize }}, above the warning"
        " threshold of 5 (queue={{ $labels.queue }}, tier={{ $labels.tier }}).",
    ),
    ("jobs_waiting", 1): (
        "JobsWaitingHigh",
        'max by (job, queue) (jobs_waiting{job="kpi-exporter"}) > 50',
        60.0,
        "Jobs waiting is above 50.",
        "Jobs waiting is {{ $value | humanize }}, above the critical threshold of 50"
        " (queue={{ $labels.queue }}).",
    ),
    ("queue_depth", 0): (
        "QueueDepthHigh",
        'queue_depth{job="kpi-exporter"} > 100',
        600.0,
        "Queue depth is above 100 jobs.",
        "Queue depth is {{ $value | humanize }} jobs, above the warning threshold of 100 jobs"
        " (instance={{ $labels.instance }}).",
    ),
    ("queue_depth", 1): (
        "QueueDepthLow",
        'queue_depth{job="kpi-exporter"} < 0.5',
        90.0,
        "Queue depth is below 0.5 jobs.",
        "Queue depth is {{ $value | humanize }} jobs, below the info threshold of 0.5 jobs"
        " (instance={{ $labels.instance }}).",
    ),
    ("errors_total", 0): (
        "ErrorsRateHigh",
        'rate(errors_total{job="kpi-exporter"}[5m]) > 2.5',
        60.0,
        "The per-second rate of errors is above 2.5 per second.",
        "The per-second rate of errors is {{ $value | humanize }}/s, above the critical"
        " threshold of 2.5 per second (instance={{ $labels.instance }}).",
    ),
    ("errors_total", 1): (
        "ErrorsIncreaseLow",
        'floor(increase(errors_total{job="kpi-exporter"}[1h])) < 10',
        1800.0,
        "The increase of errors over 1h is below 10.",
        "The increase of errors over 1h is {{ $value | humanize }}, below the warning"
        " threshold of 10 (instance={{ $labels.instance }}).",
    ),
    ("requests_total", 0): (
        "RequestsIncreaseHigh",
        'sum by (job, queue) (floor(increase(requests_total{job="kpi-exporter"}[5m]))) > 3',
        120.0,
        "The increase of requests over 5m is above 3.",
        "The increase of requests over 5m is {{ $value | humanize }}, above the warning"
        " threshold of 3 (queue={{ $labels.queue }}).",
    ),
}


@pytest.mark.parametrize("where", sorted(KPI_ALERTS))
def test_kpi_threshold_alert(spec: Spec, where: tuple[str, int]) -> None:
    kpi = next(k for k in spec.kpis if k.name == where[0])
    rule = threshold_alert(spec, kpi, kpi.alerts[where[1]])
    name, expr, wait, summary, description = KPI_ALERTS[where]
    assert (rule.alert, rule.expr, rule.for_) == (name, expr, wait)
    assert rule.annotation("summary") == summary
    assert rule.annotation("description") == description
    assert rule.label("severity") == kpi.alerts[where[1]].severity
    assert rule.label("kpi") == kpi.name


def test_ratio_threshold_alerts(spec: Spec) -> None:
    ratio = spec.ratios[0]
    low, high = (ratio_threshold_alert(spec, ratio, t) for t in ratio.alerts)
    assert (low.alert, low.for_, low.label("severity")) == ("SuccessRatioLow", 300.0, "critical")
    assert low.expr == (
        "job:success:ratio_rate10m < 0.9 and job:success:events_rate10m * 600 >= 20"
    )
    assert low.annotation("summary") == "Success ratio over 10m is below 0.9."
    assert low.annotation("description") == (
        "Success ratio over 10m is {{ $value | humanizePercentage }}, below the critical"
        " threshold of 0.9 (queue={{ $labels.queue }})."
    )
    assert (high.alert, high.label("kpi")) == ("SuccessRatioHigh", "success_ratio")
    assert high.expr == (
        'min by (job, queue) (job:success:ratio_rate10m{queue="mail"}) > 0.99'
        ' and sum by (job, queue) (job:success:events_rate10m{queue="mail"}) * 600 >= 20'
    )
    assert high.annotation("summary") == "Success ratio over 10m is above 0.99."


def test_value_format_per_unit() -> None:
    assert value_format("seconds") == ("{{ $value | humanizeDuration }}", " seconds")
    assert value_format("ratio") == ("{{ $value | humanizePercentage }}", "")
    assert value_format("jobs") == ("{{ $value | humanize }} jobs", " jobs")
    assert value_format("") == ("{{ $value | humanize }}", "")
