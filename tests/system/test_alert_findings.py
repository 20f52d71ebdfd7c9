"""Issue 13's findings 1-7 and 9, each as promtool tests of rules generated from a spec.

Input series and expected alerts are written by hand from the scenario each test describes;
nothing is computed from the generator's own thresholds. Expectations query `ALERTS`, so they
hold whatever shape the expressions take. Each test failed on the rules generated before the
fix of its finding (each docstring says how the old rules failed it)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from conftest import ROOT, tool
from support import demo_traffic

from exporter import demo
from exporter.spec.loading import load_spec

DEMO = ROOT / "config" / "demo.yaml"

SHOP = """
exporter:
  job: shop
  labels: {service: demo}
databases:
  app: {dsn: "sqlite:///x.db"}
kpis:
  - {name: ok_total, type: counter, database: app, interval: 10s, labels: [type],
     query: SELECT 1 AS value}
  - {name: failed_total, type: counter, database: app, interval: 10s,
     labels: [type, error_type], query: SELECT 1 AS value}
  - name: payment_failures_total
    type: counter
    database: app
    interval: 10s
    query: SELECT 1 AS value
    alerts:
      - {name: PaymentFailures, severity: critical, increase: 5m, above: 3, for: 1m,
         aggregate: sum, by: [service], summary: More than 3 payments failed in 5 minutes.,
         description: '{{ $value }} payments failed.'}
  - name: errors_total
    type: counter
    database: app
    interval: 10s
    labels: [severity]
    query: SELECT 1 AS value
    alerts:
      - {name: HighErrorRate, severity: warning, rate: 5m, above: 10, for: 5m,
         aggregate: sum, by: [service], summary: More than 10 errors per second.,
         description: '{{ $value }} errors per second.'}
  - {name: active_users, type: gauge, database: app, interval: 1m, query: SELECT 1 AS value,
     anomaly: {zscore: 3, window: 1d, for: 10m}}
  - {name: queue_active_jobs, type: gauge, database: app, interval: 10s,
     query: SELECT 1 AS value, forecast: {above: 50, in: 1h, window: 1h, for: 10m}}
ratios:
  - name: success_ratio
    good: ok_total
    total: [ok_total, failed_total]
    window: 5m
    alerts: [{name: LowSuccessRate, severity: warning, below: 0.9, for: 5m}]
    slo: {objective: 99, period: 30d}
"""

HA = SHOP.replace("  labels: {service: demo}\n", "  labels: {service: demo}\n  replicas: {}\n")

SCRAPED = 'job="shop", service="demo"'


def _generate(config: Path, out: Path) -> None:
    command = [sys.executable, "-m", "exporter.cli", "generate", "rules", "-c", str(config)]
    result = subprocess.run(
        [*command, "-o", str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _groups(out: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for name in ("prometheus_rules.yaml", "prometheus_alerts.yaml"):
        groups += yaml.safe_load((out / name).read_text())["groups"]
    return groups


def _promtool(
    tmp_path: Path, spec: str | Path, tests: list[dict[str, Any]], interval: str = "15s"
) -> None:
    """Generate the rules of `spec`, run the hand-written promtool `tests` against them."""
    promtool = tool("promtool")
    if isinstance(spec, str):
        config = tmp_path / "spec.yaml"
        config.write_text(spec)
    else:
        config = spec
    out = tmp_path / "rules"
    _generate(config, out)
    document = {
        "rule_files": [str(out / "prometheus_rules.yaml"), str(out / "prometheus_alerts.yaml")],
        "evaluation_interval": interval,
        # recording rules first, as Prometheus' own order within one evaluation cannot promise
        "group_eval_order": [g["name"] for g in _groups(out)],
        "tests": tests,
    }
    path = tmp_path / "findings.test.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=10000))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _firing(alert: str, by: str, eval_time: str, samples: dict[str, int]) -> dict[str, Any]:
    """An expression test: the firing `alert`s counted by `by` are exactly `samples`."""
    return {
        "expr": f'count by ({by}) (ALERTS{{alertname="{alert}", alertstate="firing"}})',
        "eval_time": eval_time,
        "exp_samples": [{"labels": labels, "value": value} for labels, value in samples.items()],
    }


def _quiet(alert: str, eval_time: str) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alert, "exp_alerts": []}


def _values(numbers: list[float]) -> str:
    return " ".join(f"{n:g}" for n in numbers)


# --- 1. ratios go blind when a label set has no good series --------------------------------------


def test_finding1_ratio_of_a_type_failing_completely_fires(tmp_path: Path) -> None:
    """A generation type whose every event fails (no `ok_total` series at all) fires both the
    threshold and the fastest burn-rate alert. Old rules: `good / total` is empty for that
    type, so neither fired (promtool: got no LowSuccessRate, no SuccessErrorBudgetBurn)."""
    test = {
        "interval": "1m",
        "input_series": [
            {"series": f'ok_total{{instance="a:1", {SCRAPED}, type="text"}}', "values": "0+60x40"},
            {
                "series": f'failed_total{{error_type="timeout", instance="a:1", {SCRAPED}, '
                'type="text"}',
                "values": "0+1x40",
            },
            {
                "series": f'failed_total{{error_type="timeout", instance="a:1", {SCRAPED}, '
                'type="audio"}',
                "values": "0+30x40",
            },
        ],
        "promql_expr_test": [
            _firing("LowSuccessRate", "job, type", "30m", {'{job="shop", type="audio"}': 1}),
            {
                "expr": 'count by (job, type) (ALERTS{alertname="SuccessErrorBudgetBurn", '
                'alertstate="firing", long="1h"})',
                "eval_time": "30m",
                "exp_samples": [{"labels": '{job="shop", type="audio"}', "value": 1}],
            },
        ],
    }
    _promtool(tmp_path, SHOP, [test], interval="1m")


# --- 2. "more than 3 in 5 minutes" fired on exactly 3 --------------------------------------------


def _payments(failures: int) -> str:
    """Scrapes every 15 s, 5 s after each evaluation (as in a real Prometheus, whose scrapes
    and evaluations are not aligned): 20 at 100 failures so far, then one more failure a
    scrape, then flat; 40 scrapes. Written in 5 s slots, `_` where there is no scrape."""
    rising = [100.0 + n for n in range(1, failures + 1)]
    scrapes = [100.0] * 20 + rising + [100.0 + failures] * (40 - 20 - failures)
    return " ".join(f"_ {value:g} _" for value in scrapes)


def test_finding2_count_alert_counts_whole_events(tmp_path: Path) -> None:
    """Exactly 3 payment failures in 5 minutes is not "more than 3"; 4 is. Old rules:
    `increase()` read the 3 as 3.16 and PaymentFailures fired at 7m and 8m."""
    series = f'payment_failures_total{{instance="a:1", {SCRAPED}}}'
    three = {
        "interval": "5s",
        "input_series": [{"series": series, "values": _payments(3)}],
        "alert_rule_test": [_quiet("PaymentFailures", t) for t in ("6m", "7m", "8m", "9m")],
    }
    four = {
        "interval": "5s",
        "input_series": [{"series": series, "values": _payments(4)}],
        "promql_expr_test": [
            _firing("PaymentFailures", "job, service", "7m", {SCRAPED.join("{}"): 1})
        ],
    }
    _promtool(tmp_path, SHOP, [three, four])


# --- 3. HA pairs double every sum -----------------------------------------------------------------


def _replicas(metric: str, labels: str, values: list[str]) -> list[dict[str, str]]:
    return [
        {
            "series": f'{metric}{{instance="{name}:9091", replica="{name}", {SCRAPED}{labels}}}',
            "values": value,
        }
        for name, value in zip(("a", "b"), values, strict=True)
    ]


def test_finding3_ha_pair_counts_once_and_pages_when_both_are_down(tmp_path: Path) -> None:
    """Two replicas (label `replica`) of one exporter: 6 errors/s and 2 payment failures are
    counted once, one replica down does not page, both down page once. Old rules (with the
    `replicas` key removed, which the old loader refused): HighErrorRate fired at 12/s,
    PaymentFailures at 4, KpiExporterDown for the one replica down."""
    half = {
        "interval": "5s",
        "input_series": [
            *_replicas("errors_total", ', severity="error"', ["1000+30x180", "1000+30x180"]),
            *_replicas("payment_failures_total", "", [_payments(2)] * 2),
            *_replicas("up", "", ["1x180", "0x180"]),
        ],
        "alert_rule_test": [
            _quiet(name, t)
            for name in ("HighErrorRate", "PaymentFailures", "KpiExporterDown")
            for t in ("9m", "12m")
        ],
    }
    both = {
        "interval": "5s",
        "input_series": [
            *_replicas("errors_total", ', severity="error"', ["1000+60x180", "1000+60x180"]),
            *_replicas("up", "", ["0x180", "0x180"]),
        ],
        "promql_expr_test": [
            _firing("KpiExporterDown", "job", "5m", {'{job="shop"}': 1}),
            _firing("HighErrorRate", "job", "12m", {'{job="shop"}': 1}),
        ],
    }
    _promtool(tmp_path, HA, [half, both])


# --- 4. quantile alerts between distant buckets; no minimum traffic -----------------------------


def test_finding4_healthy_latency_does_not_fire_high_response_time(tmp_path: Path) -> None:
    """The demo: 10 requests/s on one route, every one taking 1.1-1.5 s (p95 under 1.5 s).
    Old rules: between buckets 1 and 2.5, histogram_quantile read p95 2.43 s > 2 s and
    HighResponseTime fired."""
    from exporter.spec.loading import load_spec

    buckets = load_spec([DEMO]).spec.kpi("http_request_duration_seconds").buckets
    assert buckets
    labels = 'instance="a:1", job="kpi-exporter", route="/api/generate", service="demo"'
    series = [
        {
            # every request is at or under `le` when le >= 1.5 s, none when le < 1.1 s
            "series": f'http_request_duration_seconds_bucket{{{labels}, le="{le:g}"}}',
            "values": "0+600x20" if le >= 1.5 else "0x20",
        }
        for le in buckets
        if not 1.1 <= le < 1.5
    ]
    series.append(
        {
            "series": f'http_request_duration_seconds_bucket{{{labels}, le="+Inf"}}',
            "values": "0+600x20",
        }
    )
    test = {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [_quiet("HighResponseTime", t) for t in ("10m", "15m", "20m")],
    }
    _promtool(tmp_path, DEMO, [test], interval="1m")


def test_finding4_high_response_time_needs_minimum_traffic(tmp_path: Path) -> None:
    """The demo's HighResponseTime: a route with one request a minute, every one taking 3 s
    (p95 3 s, but 5 requests in 5 minutes), does not fire; a route with 2 requests a second,
    10% of them taking 3 s, does. Old rules: both fired."""
    buckets = load_spec([DEMO]).spec.kpi("http_request_duration_seconds").buckets
    assert buckets
    labels = 'instance="a:1", job="kpi-exporter", service="demo"'
    series = []
    for route, fast, slow in (("/rare", 0, 1), ("/busy", 108, 12)):  # requests a minute
        for le in [*buckets, math.inf]:
            count = (fast if le >= 0.1 else 0) + (slow if le >= 3 else 0)
            bound = "+Inf" if le == math.inf else f"{le:g}"
            series.append(
                {
                    "series": f"http_request_duration_seconds_bucket{{{labels}, "
                    f'route="{route}", le="{bound}"}}',
                    "values": f"0+{count}x30",
                }
            )
    test = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": 'count by (route) (ALERTS{alertname="HighResponseTime", '
                'alertstate="firing"})',
                "eval_time": "20m",
                "exp_samples": [{"labels": '{route="/busy"}', "value": 1}],
            }
        ],
    }
    _promtool(tmp_path, DEMO, [test], interval="1m")


def test_finding4_check_reports_a_quantile_threshold_off_the_buckets(tmp_path: Path) -> None:
    """`check` names file:line of a quantile threshold that is not a bucket boundary. Old code:
    `check` accepted the spec."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        """databases:
  app: {dsn: "sqlite:///x.db"}
kpis:
  - {name: latency_seconds, type: histogram, database: app, interval: 10s, cursor: id,
     buckets: [0.5, 1, 2.5],
     query: "SELECT id, seconds AS value FROM r WHERE id > :cursor ORDER BY id LIMIT :batch"}
alerts:
  - name: SlowRequests
    expr: histogram_quantile(0.95, sum by (le) (rate(latency_seconds_bucket[5m]))) > 2
    for: 5m
    severity: warning
    summary: Slow.
    description: P95 is {{ $value }}.
"""
    )
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{spec}:9" in result.stderr
    assert "2 is not a bucket boundary of latency_seconds (0.5, 1, 2.5)" in result.stderr


def test_finding4_check_reports_a_latency_bound_off_the_buckets(tmp_path: Path) -> None:
    """`check` names file:line of a share-of-slow-requests alert whose `le` is not a bucket
    boundary (the selector reads no series, so the alert could never fire), in an `=~` list
    too, and of a record doing the same; `le="+Inf"` and real bounds pass. Old code: `check`
    accepted the spec."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        """databases:
  app: {dsn: "sqlite:///x.db"}
kpis:
  - {name: latency_seconds, type: histogram, database: app, interval: 10s, cursor: id,
     buckets: [0.5, 1, 2.5],
     query: "SELECT id, seconds AS value FROM r WHERE id > :cursor ORDER BY id LIMIT :batch"}
alerts:
  - name: SlowRequests
    expr: |
      1 - sum(rate(latency_seconds_bucket{le="2"}[5m]))
        / sum(rate(latency_seconds_bucket{le="+Inf"}[5m])) > 0.05
    for: 5m
    severity: warning
    summary: Slow.
    description: '{{ $value }} slow.'
  - name: FastEnough
    expr: sum(rate(latency_seconds_bucket{le=~"1|1.0|0.75"}[5m])) < 1
    for: 5m
    severity: warning
    summary: Fast.
    description: '{{ $value }} fast.'
records:
  - {record: "job:latency:fast_rate5m", expr: 'sum(rate(latency_seconds_bucket{le="2.5"}[5m]))'}
  - {record: "job:latency:mid_rate5m", expr: 'sum(rate(latency_seconds_bucket{le="0.7"}[5m]))'}
"""
    )
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "not a bucket boundary" in line]
    assert len(errors) == 3, result.stderr
    assert f"{spec}:9" in errors[0] and 'le="2" is not a bucket boundary' in errors[0]
    assert f"{spec}:17" in errors[1] and 'le="0.75"' in errors[1]
    assert f"{spec}:24" in errors[2] and 'le="0.7"' in errors[2]
    assert "latency_seconds (0.5, 1, 2.5)" in errors[0]


def test_finding4_ratio_alert_needs_minimum_traffic(tmp_path: Path) -> None:
    """One success and one failure every 2 minutes (half failing, 5 events in 5 minutes) is
    too little traffic to page on. Old rules: LowSuccessRate fired on the 50% ratio."""
    test = {
        "interval": "2m",
        "input_series": [
            {"series": f'ok_total{{instance="a:1", {SCRAPED}, type="text"}}', "values": "0+1x20"},
            {
                "series": f'failed_total{{error_type="timeout", instance="a:1", {SCRAPED}, '
                'type="text"}',
                "values": "0+1x20",
            },
        ],
        "alert_rule_test": [_quiet("LowSuccessRate", t) for t in ("20m", "30m")],
    }
    _promtool(tmp_path, SHOP, [test], interval="1m")


def test_finding4_burn_rate_alert_needs_minimum_traffic(tmp_path: Path) -> None:
    """Every event of two types fails: `rare` once an hour, `busy` once a second. Over four
    hours only `busy` pages (the ratio's min_events, 20 by default, in the long window: `rare`
    has 1 in an hour, 4 in 4 hours). Old rules: the 1h/5m burn-rate alert paged for `rare`
    too, its error ratio being 1 in both windows after each failure."""
    failed = f'failed_total{{error_type="timeout", instance="a:1", {SCRAPED}, type="%s"}}'
    hourly = " ".join(f"{n}x59" for n in range(4)) + " 4"
    test = {
        "interval": "1m",
        "input_series": [
            {"series": failed % "rare", "values": "0 " + hourly},
            {"series": failed % "busy", "values": "0+60x240"},
        ],
        "promql_expr_test": [
            {
                "expr": 'max by (type) (max_over_time(ALERTS{alertname="SuccessErrorBudgetBurn", '
                'alertstate="firing", severity="critical"}[4h]))',
                "eval_time": "4h",
                "exp_samples": [{"labels": '{type="busy"}', "value": 1}],
            }
        ],
    }
    _promtool(tmp_path, SHOP, [test], interval="1m")


# --- 5. anomaly and forecast ---------------------------------------------------------------------

DAY_STEPS = 288  # 5-minute samples a day


def _daily_cycle(days: int) -> list[float]:
    """150 +- 100 users over a day (peak at 6 h into each day), 5-minute samples."""
    return [
        round(150 + 100 * math.sin(2 * math.pi * step / DAY_STEPS), 1)
        for step in range(days * DAY_STEPS)
    ]


def test_finding5_outage_at_the_daily_peak_is_an_anomaly(tmp_path: Path) -> None:
    """Eight days of a daily cycle, then active users drop to 0 at the peak of day 9 and stay
    there an hour. Old rules: z = 150 / 70.7 = 2.1 < 3, ActiveUsersAnomaly never fired."""
    values = _daily_cycle(8) + _daily_cycle(1)[:72] + [0.0] * 13
    test = {
        "interval": "5m",
        "input_series": [
            {"series": f'active_users{{instance="a:1", {SCRAPED}}}', "values": _values(values)}
        ],
        # the drop is at 8d 6h; after `for: 10m` and a scrape or two it fires
        "promql_expr_test": [_firing("ActiveUsersAnomaly", "job", "8d6h30m", {'{job="shop"}': 1})],
        "alert_rule_test": [_quiet("ActiveUsersAnomaly", "8d5h")],
    }
    _promtool(tmp_path, SHOP, [test], interval="5m")


def test_finding5_flat_series_moving_by_one_is_no_anomaly(tmp_path: Path) -> None:
    """100 users for 8 days, then 101: a 1% change. Old rules: the standard deviation of a flat
    day is 0, so `|101 - 100| > 3 * ~0.1` fired."""
    values = [100.0] * (8 * DAY_STEPS) + [101.0] * 24
    test = {
        "interval": "5m",
        "input_series": [
            {"series": f'active_users{{instance="a:1", {SCRAPED}}}', "values": _values(values)}
        ],
        "alert_rule_test": [_quiet("ActiveUsersAnomaly", t) for t in ("8d30m", "8d1h")],
    }
    _promtool(tmp_path, SHOP, [test], interval="5m")


def test_finding5_forecast_waits_until_the_value_is_near_the_limit(tmp_path: Path) -> None:
    """Active jobs grow by 1 a minute toward a limit of 50. At 20-25 jobs the trend predicts
    80+ in an hour, but the queue is far from 50: no page yet. At 45 it is near: it fires.
    Old rules: QueueActiveJobsPredictedHigh fired at 20m already."""
    test = {
        "interval": "1m",
        "input_series": [
            {"series": f'queue_active_jobs{{instance="a:1", {SCRAPED}}}', "values": "0+1x60"}
        ],
        "alert_rule_test": [_quiet("QueueActiveJobsPredictedHigh", t) for t in ("20m", "25m")],
        "promql_expr_test": [
            _firing("QueueActiveJobsPredictedHigh", "job", "55m", {'{job="shop"}': 1})
        ],
    }
    _promtool(tmp_path, SHOP, [test], interval="1m")


# --- 6. long SLO windows over raw samples, no group intervals -----------------------------------

RANGE = r"\[(\d+)([smhdw])\]"


def test_finding6_long_windows_read_recorded_series(tmp_path: Path) -> None:
    """No rule reads a scraped series (a name without `:`) over more than 1h, the long SLO
    windows come from a group evaluated at most every 5m, and alert groups evaluate every 30s.
    Old rules: error ratios read `rate(ok_total[30d])` etc. every evaluation, no intervals."""
    import re

    out = tmp_path / "rules"
    config = tmp_path / "spec.yaml"
    config.write_text(SHOP)
    _generate(config, out)
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    raw_long = []
    for group in _groups(out):
        for rule in group["rules"]:
            for name, count, unit in re.findall(
                r"([a-zA-Z_][\w:]*)\{[^}]*\}" + RANGE, rule["expr"]
            ):
                if ":" not in name and int(count) * seconds[unit] > 3600:
                    raw_long.append((group["name"], rule.get("record") or rule["alert"], name))
    assert raw_long == []
    intervals = {g["name"]: g.get("interval") for g in _groups(out)}
    slow = [n for n, g in intervals.items() if g is not None and g not in ("30s", "1m")]
    assert slow, intervals
    alert_groups = [
        g["name"] for g in yaml.safe_load((out / "prometheus_alerts.yaml").read_text())["groups"]
    ]
    assert {intervals[n] for n in alert_groups} == {"30s"}


# --- 7. one cause, many pages ---------------------------------------------------------------------


def test_finding7_aggregated_alerts_keep_job(tmp_path: Path) -> None:
    """An alert aggregated `by: [service]` still carries `job`, so inhibitions `equal: [job]`
    can match. Old rules: `sum by (service)` dropped job."""
    test = {
        "interval": "15s",
        "input_series": [
            {
                "series": f'errors_total{{instance="a:1", {SCRAPED}, severity="error"}}',
                "values": "0+300x40",
            },
        ],
        "promql_expr_test": [_firing("HighErrorRate", "job", "9m", {'{job="shop"}': 1})],
    }
    _promtool(tmp_path, SHOP, [test])


def test_finding7_demo_has_no_duplicate_alert_expressions(tmp_path: Path) -> None:
    """Two alerts of one expression page twice for one cause. Old demo: ServiceDown and
    KpiExporterDown were both `up{job="kpi-exporter"} == 0`."""
    out = tmp_path / "rules"
    _generate(DEMO, out)
    seen: dict[str, str] = {}
    duplicates = []
    for group in yaml.safe_load((out / "prometheus_alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            expr = " ".join(rule["expr"].split())
            if expr in seen and seen[expr] != rule["alert"]:
                duplicates.append((seen[expr], rule["alert"]))
            seen.setdefault(expr, rule["alert"])
    assert duplicates == []


# --- 9. the simulator's incidents are what the demo's alerts catch ------------------------------

OUTAGE = 1_700_049_600.0  # 2023-11-15T12:00:00Z: an outage (and an incident) starts here
INCIDENT_ALERTS = ("PaymentFailures", "LowGenerationSuccessRate")
OUTAGE_ALERTS = ("HighErrorRate", "CriticalErrorRate", "HighQueueFailureRate", "HighResponseTime")
NEVER = ("GenerationSuccessErrorBudgetBurn", "HttpRequestsTotalNotIncreasing", "KpiExporterDown")


def _ever(alert: str, eval_time: float, span: float, fired: bool) -> dict[str, Any]:
    """Whether `alert` was firing at any evaluation in the `span` seconds up to `eval_time`."""
    return {
        "expr": f'max by (alertname) (max_over_time(ALERTS{{alertname="{alert}", '
        f'alertstate="firing"}}[{span:g}s]))',
        "eval_time": f"{eval_time:g}s",
        "exp_samples": [{"labels": f'{{alertname="{alert}"}}', "value": 1}] if fired else [],
    }


def test_finding9_demo_alerts_catch_the_simulators_incidents(tmp_path: Path) -> None:
    """Two hours of the simulator's own traffic (seeded), counted by plain SQL at 15 s scrapes:
    an hour of normal traffic, then an outage (12 minutes, starting with a 90 s incident), then
    normal traffic again. Each incident alert is quiet through the hour before, fires within 9
    minutes of the incident's start and is quiet from then to the end; each outage alert is
    quiet through the hour before the outage, fires in the outage, and is quiet again 20
    minutes after its start. Old simulator and spec: HighResponseTime fired on normal
    traffic, and HighErrorRate, CriticalErrorRate and HighQueueFailureRate never fired."""
    assert demo.outage(OUTAGE) and demo.incident(OUTAGE) and not demo.outage(OUTAGE - 1)
    since, until = OUTAGE - 3600 - 420, OUTAGE + 3600
    assert demo.INCIDENT.windows(since, until) == [(OUTAGE, OUTAGE + 90)]
    buckets = load_spec([DEMO]).spec.kpi("http_request_duration_seconds").buckets
    assert buckets
    conn = demo_traffic.simulate(since, until, seed=13)
    series = (
        demo_traffic.counter_series(conn, since, until)
        + demo_traffic.histogram_series(conn, since, until, list(buckets))
        + demo_traffic.up_series(since, until)
    )
    outage = OUTAGE - since  # seconds into the test
    checks = []
    for alert in INCIDENT_ALERTS:
        checks.append(_ever(alert, outage, 3600, fired=False))
        checks.append(_ever(alert, outage + 540, 540, fired=True))
        checks.append(_ever(alert, until - since, until - since - outage - 900, fired=False))
    for alert in OUTAGE_ALERTS:
        checks.append(_ever(alert, outage, 3600, fired=False))
        checks.append(_ever(alert, outage + 1200, 1200, fired=True))
        checks.append(_ever(alert, until - since, until - since - outage - 1200, fired=False))
    checks += [_ever(alert, until - since, until - since, fired=False) for alert in NEVER]
    test = {"interval": "15s", "input_series": series, "promql_expr_test": checks}
    _promtool(tmp_path, DEMO, [test], interval="30s")
