"""promtool unit tests of the SLOs' burn-rate alerts, for every kind of SLO (ratio, latency,
freshness): every window firing on a burn, silent on good data, budget records checked.

Event SLOs (ratio, latency) are driven through a writer that lays down counters at given bad
and total events per second; freshness through the exporter's own success timestamps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from exporter.conventions import BURN_WINDOWS, SelfMetric, le_value
from exporter.generation.promql import duration
from exporter.generation.rule_tests import (
    Labels,
    ScenarioError,
    TestCase,
    _keep,
    _ratio_series,
    _series_text,
    _steps,
    _up,
    base_labels,
    kpi_labels,
    ramp,
)
from exporter.generation.rules.freshness import freshness_level, freshness_sli
from exporter.generation.rules.latency import latency_sli
from exporter.generation.rules.model import AlertRule
from exporter.generation.rules.ratios import ratio_sli
from exporter.generation.rules.slo import SAMPLE_INTERVAL, Sli, burn_alerts
from exporter.spec.labels import source_labels
from exporter.spec.model import Kpi, Ratio, Spec

# (case, bad events per second, all events per second, bad from, until) -> labels of the
# recorded series; before `bad from` every event is good
Writer = Callable[[TestCase, float, float, float, float], Labels]
ONE_THOUSANDTH = 1000  # a hair past a bound: 1/1000 of an event per second more


def counter(before: float, after: float, switch: float, until: float, step: float) -> str:
    """A counter's values rising `before` a second until `switch`, then `after` a second."""
    n = _steps(until, step)
    k = round(switch / step)
    if k <= 0 or before == after:
        return ramp(0, after * step, n)
    return (
        f"{ramp(0, before * step, k)} {ramp((before * k + after) * step, after * step, n - k - 1)}"
    )


def _all_firing(
    at: float, rules: Sequence[AlertRule], labels: Labels | Sequence[Labels]
) -> dict[str, Any]:
    """Every rule (the windows of one alert) firing at 100% for each label set."""
    probe = TestCase()
    for rule in rules:
        probe.expect(at, rule, [(one, 1.0) for one in _label_sets(labels)])
    alerts = [a for check in probe.alerts for a in check["exp_alerts"]]
    return {"eval_time": duration(at), "alertname": rules[0].alert, "exp_alerts": alerts}


def _expr_check(
    at: float, expr: str, labels: Labels | Sequence[Labels], value: float
) -> dict[str, Any]:
    samples = [{"labels": _series_text(expr, one), "value": value} for one in _label_sets(labels)]
    return {"expr": expr, "eval_time": duration(at), "exp_samples": samples}


def _label_sets(labels: Labels | Sequence[Labels]) -> list[Labels]:
    return [labels] if isinstance(labels, dict) else list(labels)


def _end(rules: Sequence[AlertRule], step: float) -> float:
    """When every burn-rate alert of a constant burn has fired: the longest `for` and a step."""
    return _up(step + max(r.for_ for r in rules), step)


def event_slo_cases(spec: Spec, sli: Sli, write: Writer, step: float) -> list[TestCase]:
    """Every event failing: silent until the page alert's `for`, then every window fires and
    the budget left is 1 - 1/budget; no event failing: silent, the whole budget left; every
    event failing at too little traffic (min_events) on a series younger than the long
    windows: silent."""
    rules = burn_alerts(spec, sli)
    end = _end(rules, step)
    if sli.min_events > 0:
        # the guard counts the events of whole SAMPLE_INTERVAL steps: 300 a step at 1 a second
        counted = SAMPLE_INTERVAL * max(1, math.ceil(sli.min_events / SAMPLE_INTERVAL))
        end = max(end, _up(counted + max(r.for_ for r in rules), step))
    failing = TestCase()
    labels = write(failing, 1.0, 1.0, 0.0, end)
    first = min(rules, key=lambda r: r.for_)
    failing.expect(step + first.for_ - step, first, [])
    failing.alerts.append(_all_firing(end, rules, labels))
    spent = 1 - (1.0 / float(sli.budget))
    failing.exprs.append(_expr_check(end, sli.names.budget, labels, spent))
    healthy = TestCase()
    write(healthy, 0.0, 1.0, 0.0, end)
    healthy.expect(end, rules[0], [])
    healthy.exprs.append(_expr_check(end, sli.names.budget, labels, 1.0))
    if sli.min_events <= 0:
        return [failing, healthy]
    # every event failing, min_events / 2 in the series' whole life, shorter than the 6h, 1d
    # and 3d windows: no window may burn (its rate times the whole window would read up to
    # 12x min_events in the 3d one)
    quiet = TestCase()
    rare = sli.min_events / (2 * end)
    write(quiet, rare, rare, 0.0, end)
    quiet.expect(end, rules[0], [])
    return [failing, healthy, quiet]


def _page_firing(at: float, rule: AlertRule, firing: bool) -> dict[str, Any]:
    """Whether the burn-rate alert of `rule`'s long window fires at `at` (its siblings, other
    windows of the same name, may fire or not)."""
    selector = f'alertname="{rule.alert}", alertstate="firing", long="{rule.label("long")}"'
    expr = f"count(ALERTS{{{selector}}})"
    samples = [{"labels": "{}", "value": 1}] if firing else []
    return {"expr": expr, "eval_time": duration(at), "exp_samples": samples}


def burn_boundary_cases(spec: Spec, sli: Sli, write: Writer, step: float) -> list[TestCase]:
    """The page alert (the shortest long window) probed at its bound, L = burn rate x budget:
    an error ratio of exactly L (bad/all = p/q, whole events per second: both rates and their
    quotient are exact) stays silent, a thousandth of an event per second more fires once its
    window is full and `for` has passed; and after an hour of good events, all failing from
    then on, the long window's ratio (t - t0) / 1h passes L at t0 + L x 1h and the alert fires
    `for` later, not a step sooner (a shorter window would) nor later (a longer one)."""
    rules = burn_alerts(spec, sli)
    page = min(BURN_WINDOWS, key=lambda w: w.long)
    rule = rules[BURN_WINDOWS.index(page)]
    limit = sli.limit(page)
    p, q = limit.numerator, limit.denominator
    if limit >= 1 or q > 10**6:
        return []  # a page that can never fire, or rates too large to write exactly
    full = _up(page.long + rule.for_ + step, step)
    at_bound, above = TestCase(), TestCase()
    write(at_bound, p, q, 0.0, full)
    at_bound.exprs.append(_page_firing(full, rule, False))
    write(above, ONE_THOUSANDTH * p + 1, ONE_THOUSANDTH * q, 0.0, full)
    above.exprs.append(_page_firing(full, rule, True))
    cases = [at_bound, above]
    start = page.long  # the window holds an hour of good events
    crossing = start + limit * Fraction(round(page.long))
    if crossing % Fraction(round(step)) != 0:  # on the grid the ratio would be exactly L
        fire = _up(float(crossing), step) + rule.for_
        onset = TestCase()
        write(onset, 1.0, 1.0, start, fire + step)
        onset.exprs += [_page_firing(fire - step, rule, False), _page_firing(fire, rule, True)]
        cases.append(onset)
    return cases


def ratio_writer(spec: Spec, ratio: Ratio, step: float) -> Writer:
    """Good counter at total - bad; the bad events on the first other counter of the total, or
    all events on the first total counter when the good one is counted apart."""
    others = [n for n in dict.fromkeys(ratio.total) if n != ratio.good]
    if not others:
        raise ScenarioError(f"{ratio.name}: total holds only the good counter")

    def rates(bad: float, total: float) -> dict[str, float]:
        rates = {name: 0.0 for name in others}
        rates[others[0]] = bad if ratio.good in ratio.total else total
        rates[ratio.good] = total - bad
        return rates

    def write(case: TestCase, bad: float, total: float, bad_from: float, until: float) -> Labels:
        before, after = rates(0.0, total), rates(bad, total)
        values = {n: counter(before[n], after[n], bad_from, until, step) for n in after}
        return _ratio_series(spec, ratio, case, values)

    return write


def latency_writer(spec: Spec, kpi: Kpi, step: float) -> Writer:
    """Good events exactly at the latency bound, bad ones in the next bucket up (a neighbouring
    bucket taken for the bound would count one or the other wrongly), every bucket written."""
    slo = kpi.slo
    assert slo is not None
    metric = spec.metric_name(kpi)
    labels = kpi_labels(spec, kpi)
    bounds = [*sorted(set(kpi.buckets or []) | {slo.latency}), math.inf]
    slower = bounds[bounds.index(slo.latency) + 1]

    def count(bound: float, bad: float, total: float) -> float:
        return (total - bad if bound >= slo.latency else 0) + (bad if bound >= slower else 0)

    def write(case: TestCase, bad: float, total: float, bad_from: float, until: float) -> Labels:
        for bound in bounds:
            le = "+Inf" if bound == math.inf else le_value(bound)
            before, after = count(bound, 0, total), count(bound, bad, total)
            values = counter(before, after, bad_from, until, step)
            case.add_series(f"{metric}_bucket", {**labels, "le": le}, values)
        case.add_series(f"{metric}_count", labels, counter(total, total, 0, until, step))
        return _keep(labels, [name for name in source_labels(spec, kpi) if name != "instance"])

    return write


def ratio_slo_cases(spec: Spec, ratio: Ratio, step: float) -> list[TestCase]:
    sli, write = ratio_sli(spec, ratio), ratio_writer(spec, ratio, step)
    return event_slo_cases(spec, sli, write, step) + burn_boundary_cases(spec, sli, write, step)


def latency_cases(spec: Spec, kpi: Kpi, step: float) -> list[TestCase]:
    sli, write = latency_sli(spec, kpi), latency_writer(spec, kpi, step)
    return event_slo_cases(spec, sli, write, step) + burn_boundary_cases(spec, sli, write, step)


# --- freshness --------------------------------------------------------------------------------

LAST_SUCCESS = SelfMetric.LAST_SUCCESS.value


def freshness_cases(spec: Spec, kpi: Kpi, step: float) -> list[TestCase]:
    """Data exactly max_age old (stale: the comparison is strict) burns every window; a hair
    younger is silent with the whole budget left; an exporter that never answered burns every
    window too (stale, not missing); one that stops answering turns stale once its last
    success is max_age old. For cursor KPIs, a cursor lag of max_age burns like an old poll."""
    freshness = kpi.freshness
    assert freshness is not None
    sli = freshness_sli(spec, kpi)
    rules = burn_alerts(spec, sli)
    max_age = freshness.max_age
    hair = max_age / 1000
    gone_at = 2 * step
    end = max(_end(rules, step), _up(gone_at + max_age + step, step))
    n = _steps(end, step)
    # the exporter's own series, one per database of the KPI: the target's labels, the KPI's
    # name and the database, no constant labels; and the fresh series recorded from each
    own = {k: v for k, v in base_labels(spec).items() if k not in spec.exporter.labels}
    databases = spec.databases_of(kpi)
    self_labels = [{**own, "kpi": kpi.name, "database": d} for d in databases]
    fixed = _keep(base_labels(spec), freshness_level(spec))
    recorded = [
        {**fixed, **spec.exporter.labels, "kpi": kpi.name, "database": d} for d in databases
    ]

    def polled(case: TestCase, age: float, count: int = n, metric: str = LAST_SUCCESS) -> None:
        """The last success `age` seconds before each scrape (or a cursor lag of `age`)."""
        for labels in self_labels:
            values = ramp(-age, step, count) if metric == LAST_SUCCESS else ramp(age, 0, count)
            case.add_series(metric, labels, values)

    stale = TestCase()
    polled(stale, max_age)
    stale.alerts.append(_all_firing(end, rules, recorded))
    fresh = TestCase()
    polled(fresh, max_age - hair)
    fresh.expect(end, rules[0], [])
    fresh.exprs.append(_expr_check(end, sli.names.budget, recorded, 1.0))
    never = TestCase()
    never.add_series("up", base_labels(spec), ramp(0, 0, n))
    never.alerts.append(_all_firing(end, rules, recorded))
    never.exprs.append(_expr_check(end, sli.names.budget, recorded, 1 - 1 / float(sli.budget)))
    gone = TestCase()
    polled(gone, 0, round(gone_at / step))
    last = gone_at + max_age  # the last success (at gone_at) is max_age old
    if last - step > gone_at:
        gone.exprs.append(_expr_check(last - step, sli.names.good, recorded, 1.0))
    gone.exprs.append(_expr_check(last, sli.names.good, recorded, 0.0))
    gone.exprs.append(_expr_check(end, sli.names.good, recorded, 0.0))
    cases = [stale, fresh, never, gone]
    if kpi.cursor is not None:
        for lag, firing in ((max_age, True), (max_age - hair, False)):
            case = TestCase()
            polled(case, 0)
            polled(case, lag, metric=SelfMetric.CURSOR_LAG)
            if firing:
                case.alerts.append(_all_firing(end, rules, recorded))
            else:
                case.expect(end, rules[0], [])
            cases.append(case)
    return cases


def kpi_slo_cases(spec: Spec, kpi: Kpi, step: float) -> list[TestCase]:
    cases = []
    if kpi.slo is not None:
        cases += latency_cases(spec, kpi, step)
    if kpi.freshness is not None:
        cases += freshness_cases(spec, kpi, step)
    return cases
