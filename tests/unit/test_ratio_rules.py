"""A ratio's recorded PromQL and its SLO error ratio, against expressions written out by hand:
a dropped `or ... * 0` (a label set with no good series reading nothing instead of 0), the
good and bad counters swapped, or the bad events taken from the wrong branch fails here."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from exporter.generation.rules.model import RecordRule
from exporter.generation.rules.ratios import (
    error_events,
    ratio_expr,
    ratio_record,
    ratio_sli,
    ratio_threshold_alert,
)
from exporter.spec.loading import load_spec
from exporter.spec.model import Ratio, Spec

SPEC = """\
databases:
  app:
    dsn: sqlite:///app.db
kpis:
  - {name: requests_total, type: counter, database: app, interval: 30s, labels: [queue],
     query: "SELECT 'q' AS queue, 1 AS value"}
  - {name: failed_requests_total, type: counter, database: app, interval: 30s, labels: [queue],
     query: "SELECT 'q' AS queue, 1 AS value"}
  - {name: delivered_total, type: counter, database: app, interval: 30s,
     query: SELECT 1 AS value}
  - {name: sent_total, type: counter, database: app, interval: 30s, query: SELECT 1 AS value}
ratios:
  # good is one of the total's counters: the bad events are the others
  - name: success
    good: requests_total
    total: [requests_total, failed_requests_total]
    window: 10m
    slo: {objective: 99}
  # good counted apart from the total: the bad events are total minus good
  - name: delivery
    good: delivered_total
    total: [sent_total]
    window: 5m
    min_events: 0
    alerts:
      - {severity: warning, below: 0.5, for: 1m}
    slo: {objective: 99}
  # an SLO's wording drops `_ratio`; objective and period as written
  - name: checkout_ratio
    good: delivered_total
    total: [sent_total]
    slo: {objective: 99.5, period: 7d}
"""

# the pieces, written out by hand (no replicas, both ratios' counters share their labels, so
# every sum drops only `instance` and the temporary counter label)
SUCCESS_GOOD = 'sum without (instance) (rate(requests_total{job="kpi-exporter"}[10m]))'
SUCCESS_TOTAL = (
    "sum without (instance, ratio_counter) ("
    'label_replace(rate(requests_total{job="kpi-exporter"}[10m]),'
    ' "ratio_counter", "requests_total", "", "")'
    " or "
    'label_replace(rate(failed_requests_total{job="kpi-exporter"}[10m]),'
    ' "ratio_counter", "failed_requests_total", "", ""))'
)
SUCCESS_BAD = 'sum without (instance) (rate(failed_requests_total{job="kpi-exporter"}[10m]))'
DELIVERY_GOOD = 'sum without (instance) (rate(delivered_total{job="kpi-exporter"}[5m]))'
DELIVERY_TOTAL = 'sum without (instance) (rate(sent_total{job="kpi-exporter"}[5m]))'


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    path: Path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(SPEC)
    return load_spec([path]).spec


def ratio(spec: Spec, name: str) -> Ratio:
    return next(r for r in spec.ratios if r.name == name)


def test_ratio_is_good_or_zero_over_total(spec: Spec) -> None:
    assert ratio_expr(spec, ratio(spec, "success"), 600) == (
        f"({SUCCESS_GOOD} or {SUCCESS_TOTAL} * 0) / {SUCCESS_TOTAL}"
    )
    assert ratio_expr(spec, ratio(spec, "delivery"), 300) == (
        f"({DELIVERY_GOOD} or {DELIVERY_TOTAL} * 0) / {DELIVERY_TOTAL}"
    )


def test_ratio_record_and_its_events_per_second(spec: Spec) -> None:
    assert ratio_record(spec, ratio(spec, "success")) == [
        RecordRule(
            "job:success:ratio_rate10m",
            f"({SUCCESS_GOOD} or {SUCCESS_TOTAL} * 0) / {SUCCESS_TOTAL}",
        ),
        RecordRule("job:success:events_rate10m", SUCCESS_TOTAL),
    ]


def test_bad_events_are_the_other_counters_when_good_is_in_the_total(spec: Spec) -> None:
    expected = f"({SUCCESS_BAD} or {SUCCESS_TOTAL} * 0)"
    assert error_events(spec, ratio(spec, "success"), 600) == expected
    assert (
        ratio_sli(spec, ratio(spec, "success")).error_ratio(600) == f"{expected} / {SUCCESS_TOTAL}"
    )


def test_bad_events_are_total_minus_good_when_good_is_counted_apart(spec: Spec) -> None:
    expected = f"({DELIVERY_TOTAL} - ({DELIVERY_GOOD} or {DELIVERY_TOTAL} * 0))"
    assert error_events(spec, ratio(spec, "delivery"), 300) == expected
    assert (
        ratio_sli(spec, ratio(spec, "delivery")).error_ratio(300)
        == f"{expected} / {DELIVERY_TOTAL}"
    )


def test_error_ratio_takes_the_window_asked_for(spec: Spec) -> None:
    total = 'sum without (instance) (rate(sent_total{job="kpi-exporter"}[1h]))'
    good = 'sum without (instance) (rate(delivered_total{job="kpi-exporter"}[1h]))'
    assert ratio_sli(spec, ratio(spec, "delivery")).error_ratio(3600) == (
        f"({total} - ({good} or {total} * 0)) / {total}"
    )


def test_alert_without_min_events_has_no_traffic_guard(spec: Spec) -> None:
    delivery = ratio(spec, "delivery")
    rule = ratio_threshold_alert(spec, delivery, delivery.alerts[0])
    assert rule.expr == "job:delivery:ratio_rate5m < 0.5"


def test_slo_indicator_of_a_ratio(spec: Spec) -> None:
    sli = ratio_sli(spec, ratio(spec, "checkout_ratio"))
    assert (sli.names.prefix, sli.names.op) == ("job:checkout", "rate")
    assert (sli.alert, sli.kpi) == ("CheckoutErrorBudgetBurn", "checkout_ratio")
    assert (sli.objective, sli.period) == (Fraction(995, 1000), 7 * 86400)
    assert sli.budget == "0.005"
    assert sli.subject == "Checkout"
    assert sli.what == "Checkout failed {share} of events over the last {window}"
    assert list(sli.labels) == ["job"]
    assert sli.min_events == 20  # the ratio's default guards its burn alerts too
    total = 'sum without (instance) (rate(sent_total{job="kpi-exporter"}[5m]))'
    good = 'sum without (instance) (rate(delivered_total{job="kpi-exporter"}[5m]))'
    assert sli.rates is not None
    assert sli.rates(300) == (f"({total} - ({good} or {total} * 0))", total)
