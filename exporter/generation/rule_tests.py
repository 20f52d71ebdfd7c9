"""promtool unit tests generated from the spec: each alert silent before `for`, firing after."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from exporter.conventions import SelfMetric
from exporter.generation import promql
from exporter.generation.alert_templates import render
from exporter.generation.promql import duration, quote
from exporter.generation.rules.health import health_rules
from exporter.generation.rules.kpis import (
    absent_alert,
    anomaly_alert,
    forecast_alert,
    forecast_near,
    no_increase_alert,
    no_increase_level,
)
from exporter.generation.rules.model import AlertRule, confirm_for
from exporter.generation.rules.ratios import ratio_threshold_alert
from exporter.generation.rules.thresholds import threshold_alert, threshold_labels
from exporter.spec.labels import ratio_kpis, ratio_labels, source_labels
from exporter.spec.model import Kpi, Ratio, Spec, Threshold

INSTANCE = "exporter:9091"
Labels = dict[str, str]


class ScenarioError(ValueError):
    """No input series can make this alert fire: the spec asks for something impossible."""


@dataclass
class TestCase:
    """One promtool test: input series, then alert checks and expression checks."""

    series: list[tuple[str, Labels, str]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    exprs: list[dict[str, Any]] = field(default_factory=list)

    def add_series(self, name: str, labels: Labels, values: str) -> None:
        self.series.append((name, labels, values))

    def expect(self, at: float, rule: AlertRule, firing: Sequence[tuple[Labels, float]]) -> None:
        """`rule` fires at `at` exactly once per (series labels, value); [] means silent."""
        alerts = []
        for labels, value in firing:
            alerts.append(
                {
                    "exp_labels": dict(sorted({**labels, **dict(rule.labels)}.items())),
                    "exp_annotations": {k: render(v, labels, value) for k, v in rule.annotations},
                }
            )
        self.alerts.append(
            {"eval_time": duration_or_zero(at), "alertname": rule.alert, "exp_alerts": alerts}
        )

    def document(self, step: float) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "interval": duration(step),
            "input_series": [
                {"series": _series_text(name, labels), "values": values}
                for name, labels, values in self.series
            ],
        }
        if self.alerts:
            doc["alert_rule_test"] = self.alerts
        if self.exprs:
            doc["promql_expr_test"] = self.exprs
        return doc


def duration_or_zero(seconds: float) -> str:
    return duration(seconds) if seconds > 0 else "0s"


def _series_text(name: str, labels: Mapping[str, str]) -> str:
    inner = ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def ramp(start: float, increment: float, steps: int) -> str:
    """promtool's expanding notation: `start`, then `steps` more values `increment` apart."""
    sign = "+" if increment >= 0 else "-"
    return f"{_num(start)}{sign}{_num(abs(increment))}x{steps}"


def _step(durations: Iterable[float]) -> float:
    """The evaluation step: a minute, or the largest whole-second divisor of every duration."""
    step = 60
    for value in durations:
        step = math.gcd(step, max(1, round(value)))
    return float(step)


def _up(at: float, step: float) -> float:
    return math.ceil(at / step) * step


def _steps(until: float, step: float) -> int:
    return round(until / step) + 2


def base_labels(spec: Spec) -> Labels:
    """Labels Prometheus attaches to our series, valued to satisfy the rules' selector."""
    labels: Labels = {"job": spec.exporter.job, "instance": INSTANCE, **spec.exporter.labels}
    for matcher in promql.parse_matchers(spec.exporter.rule_selector()):
        if matcher.op == "=":
            labels[matcher.name] = matcher.value
        elif matcher.op == "=~":
            first = matcher.value.split("|")[0]
            if not re.fullmatch(matcher.value, first):
                raise ScenarioError(f"cannot pick a value matching {matcher.name}=~{matcher.value}")
            labels[matcher.name] = first
        else:
            candidate = labels.get(matcher.name, "test")
            if (matcher.op == "!=" and candidate == matcher.value) or (
                matcher.op == "!~" and re.fullmatch(matcher.value, candidate)
            ):
                candidate = "x-" + candidate
            labels[matcher.name] = candidate
    return labels


def kpi_labels(spec: Spec, kpi: Kpi, matchers: Mapping[str, str] | None = None) -> Labels:
    """A KPI series as scraped: base labels, its first database's (and, on several databases,
    the database label), "a" for each of its own."""
    databases = spec.databases_of(kpi)
    constant = spec.series_labels(kpi, databases[0]) if databases else {}
    labels = {
        **base_labels(spec),
        **{k: v for k, v in constant.items() if k not in spec.exporter.labels},
        **{name: "a" for name in kpi.labels},
    }
    return {**labels, **(matchers or {})}


def _keep(labels: Mapping[str, str], names: Iterable[str]) -> Labels:
    return {name: labels[name] for name in names if name in labels}


# --- KPI thresholds ---------------------------------------------------------------------------


def _crossing(threshold: Threshold) -> float:
    if threshold.above is not None:
        return threshold.above + max(1.0, abs(threshold.above))
    assert threshold.below is not None
    return threshold.below - max(1.0, abs(threshold.below))


def threshold_case(spec: Spec, kpi: Kpi, threshold: Threshold, step: float) -> TestCase:
    rule = threshold_alert(spec, kpi, threshold)
    case = TestCase()
    window = threshold.rate or threshold.increase
    labels = kpi_labels(spec, kpi, threshold.matchers)
    if window is None:
        increment, start, active = 0.0, _crossing(threshold), 0.0
        value = start
    else:
        start, active = 0.0, step
        n = round(window / step)
        if threshold.above is not None:
            crossing = _crossing(threshold)
            increment = crossing * window if threshold.rate else crossing
        else:
            assert threshold.below is not None
            if threshold.below <= 0:
                raise ScenarioError(f"{rule.alert}: a rate or increase is never below 0")
            half = threshold.below / 2
            # an increase counts whole events (floored): half a spare event keeps it whole
            increment = half * step if threshold.rate else (math.floor(half) + 0.5) * step / window
        value = (increment * n) / window if threshold.rate else math.floor(increment * n + 1e-9)
    fire = _up(max(active + threshold.for_, window or 0.0), step)
    values = ramp(start, increment, _steps(fire, step))
    case.add_series(spec.metric_name(kpi), labels, values)
    for name in sorted(threshold.matchers):
        decoy = {**labels, name: labels[name] + "-other"}
        case.add_series(spec.metric_name(kpi), decoy, values)
    case.expect(active + threshold.for_ - step, rule, [])
    case.expect(fire, rule, [(_keep(labels, threshold_labels(spec, kpi, threshold)), value)])
    return case


def boundary_cases(spec: Spec, kpi: Kpi, threshold: Threshold, step: float) -> list[TestCase]:
    """A raw-value threshold probed at its bound: a value a hair on the quiet side and the bound
    itself stay silent (the comparison is strict), a hair past it fires once `for` has passed;
    a changed operator or bound fails one of them. Rates and increases are left to
    `threshold_case`: their value comes out of a window's extrapolation, not a hair off."""
    if threshold.rate is not None or threshold.increase is not None:
        return []
    rule = threshold_alert(spec, kpi, threshold)
    bound = threshold.above if threshold.above is not None else threshold.below
    assert bound is not None
    hair = max(1.0, abs(bound)) / 1000 * (1 if threshold.above is not None else -1)
    labels = kpi_labels(spec, kpi, threshold.matchers)
    fire = _up(threshold.for_, step)
    kept = _keep(labels, threshold_labels(spec, kpi, threshold))
    cases = []
    for value, firing in ((bound - hair, False), (bound, False), (bound + hair, True)):
        case = TestCase()
        case.add_series(spec.metric_name(kpi), labels, ramp(value, 0, _steps(fire, step)))
        if firing:
            case.expect(threshold.for_ - step, rule, [])
        case.expect(fire, rule, [(kept, value)] if firing else [])
        cases.append(case)
    return cases


def absent_cases(spec: Spec, kpi: Kpi, step: float) -> list[TestCase]:
    assert kpi.absent_for is not None
    rule = absent_alert(spec, kpi, kpi.absent_for)
    wait = kpi.absent_for
    eq = {
        m.name: m.value for m in promql.parse_matchers(spec.exporter.rule_selector()) if m.op == "="
    }
    missing = TestCase()
    missing.add_series(SelfMetric.BUILD, base_labels(spec), ramp(1, 0, _steps(wait, step)))
    missing.expect(wait - step, rule, [])
    missing.expect(wait, rule, [(eq, 1.0)])
    present = TestCase()
    present.add_series(spec.metric_name(kpi), kpi_labels(spec, kpi), ramp(1, 0, _steps(wait, step)))
    present.expect(wait + step, rule, [])
    return [missing, present]


def no_increase_cases(spec: Spec, kpi: Kpi, step: float) -> list[TestCase]:
    assert kpi.no_increase_for is not None
    window = kpi.no_increase_for
    rule = no_increase_alert(spec, kpi, window)
    labels = kpi_labels(spec, kpi)
    fire = window + rule.for_
    flat = TestCase()
    flat.add_series(spec.metric_name(kpi), labels, ramp(5, 0, _steps(fire, step)))
    flat.expect(fire - step, rule, [])
    flat.expect(fire, rule, [(_keep(labels, no_increase_level(spec)), 0.0)])
    growing = TestCase()
    growing.add_series(spec.metric_name(kpi), labels, ramp(5, 1, _steps(fire, step)))
    growing.expect(fire, rule, [])
    return [flat, growing]


def anomaly_cases(spec: Spec, kpi: Kpi, step: float) -> list[TestCase]:
    """A flat 100 doubling to 200 fires after `for` (100 from the same hour a season ago, whose
    deviation is 0); the flat 100 staying put does not."""
    assert kpi.anomaly is not None
    anomaly = kpi.anomaly
    rule = anomaly_alert(spec, kpi)
    jump = anomaly.window + 3600  # the hour a season before the jump is all 100
    fire = jump + anomaly.for_
    if anomaly.min_change * 100 >= 100:
        raise ScenarioError(f"{rule.alert}: min_change of {anomaly.min_change} rules out doubling")
    labels = kpi_labels(spec, kpi)
    jumped = TestCase()
    values = f"{ramp(100, 0, round(jump / step) - 1)} {ramp(200, 0, _steps(fire - jump, step))}"
    jumped.add_series(spec.metric_name(kpi), labels, values)
    jumped.expect(fire - step, rule, [])
    kept = source_labels(spec, kpi)
    if spec.exporter.replicas is not None:
        kept = [name for name in kept if name != "instance"]
    jumped.expect(fire, rule, [(_keep(labels, kept), 100.0)])
    flat = TestCase()
    flat.add_series(spec.metric_name(kpi), labels, ramp(100, 0, _steps(fire, step)))
    flat.expect(fire, rule, [])
    return [jumped, flat]


def forecast_case(spec: Spec, kpi: Kpi, step: float) -> TestCase:
    """Starting halfway between `near` and the limit, a slope that crosses the limit within
    `in` fires after `for`."""
    assert kpi.forecast is not None
    forecast = kpi.forecast
    rule = forecast_alert(spec, kpi)
    above = forecast.above is not None
    bound = forecast.above if above else forecast.below
    assert bound is not None
    room = abs(bound - forecast_near(kpi))
    if room == 0:
        raise ScenarioError(f"{rule.alert}: 'near' equals the limit")
    start = bound - room / 2 if above else bound + room / 2
    slope = (2 * room / forecast.in_) * (1 if above else -1)  # per second
    fire = step + forecast.for_
    predicted = start + slope * (fire + forecast.in_)
    case = TestCase()
    labels = kpi_labels(spec, kpi)
    case.add_series(spec.metric_name(kpi), labels, ramp(start, slope * step, _steps(fire, step)))
    case.expect(fire - step, rule, [])
    case.expect(fire, rule, [(_keep(labels, source_labels(spec, kpi)), predicted)])
    return case


def _kpi_durations(kpi: Kpi) -> list[float]:
    values = [kpi.absent_for or 60, kpi.no_increase_for or 60]
    for t in kpi.alerts:
        values += [t.for_, t.rate or 60, t.increase or 60]
    for extra in (kpi.anomaly, kpi.forecast):
        if extra is not None:
            values += [extra.for_, extra.window]
    return values


def kpi_tests(spec: Spec, kpi: Kpi) -> tuple[float, list[TestCase]]:
    step = _step([*_kpi_durations(kpi), confirm_for(spec)])
    cases = [threshold_case(spec, kpi, t, step) for t in kpi.alerts]
    cases += [case for t in kpi.alerts for case in boundary_cases(spec, kpi, t, step)]
    if kpi.absent_for is not None:
        cases += absent_cases(spec, kpi, step)
    if kpi.no_increase_for is not None:
        cases += no_increase_cases(spec, kpi, step)
    if kpi.anomaly is not None:
        cases += anomaly_cases(spec, kpi, step)
    if kpi.forecast is not None:
        cases.append(forecast_case(spec, kpi, step))
    return step, cases


# --- ratios and SLOs --------------------------------------------------------------------------


def _ratio_series(spec: Spec, ratio: Ratio, case: TestCase, values: Mapping[str, str]) -> Labels:
    """Add one series per counter of the ratio with the given values; return its labels."""
    recorded: Labels = {}
    for kpi in ratio_kpis(spec, ratio):
        name = spec.metric_name(kpi)
        labels = kpi_labels(spec, kpi)
        case.add_series(name, labels, values[name])
        recorded = recorded or _keep(labels, ratio_labels(spec, ratio))
    return recorded


def _ratio_rates(ratio: Ratio, good: float, other: float) -> tuple[dict[str, float], Fraction]:
    rates = {name: other for name in ratio.total}
    rates[ratio.good] = good
    total = sum(Fraction(rates[n]) for n in dict.fromkeys(ratio.total))
    return rates, (Fraction(good) / total if total else Fraction(-1))


def ratio_threshold_case(spec: Spec, ratio: Ratio, threshold: Threshold, step: float) -> TestCase:
    rule = ratio_threshold_alert(spec, ratio, threshold)
    wanted = [
        (rates, value)
        for good in (1, 2, 4, 10, 100, 1000, 0)
        for other in (0, 1, 2, 3, 4, 9, 19, 99, 999)
        for rates, value in [_ratio_rates(ratio, good, other)]
        if value >= 0
        and (
            (threshold.above is not None and value > threshold.above)
            or (threshold.below is not None and value < threshold.below)
        )
    ]
    if not wanted:
        raise ScenarioError(f"{rule.alert}: no counter rates make {ratio.name} cross its bound")
    rates = wanted[0][0]
    case = TestCase()
    fire = _up(max(step + threshold.for_, ratio.window), step)
    values = {name: ramp(0, rate * step, _steps(fire, step)) for name, rate in rates.items()}
    recorded = _ratio_series(spec, ratio, case, values)
    recorded.update(threshold.matchers)
    if threshold.by is not None:
        recorded = _keep(recorded, threshold.by)
    case.expect(step + threshold.for_ - step, rule, [])
    total = sum(rates[n] for n in dict.fromkeys(ratio.total))
    case.expect(fire, rule, [(recorded, rates[ratio.good] / total)])
    return case


def ratio_tests(spec: Spec, ratio: Ratio) -> tuple[float, list[TestCase]]:
    durations = [ratio.window, *[t.for_ for t in ratio.alerts]]
    step = _step(durations)
    return step, [ratio_threshold_case(spec, ratio, t, step) for t in ratio.alerts]


# --- exporter health --------------------------------------------------------------------------


def health_tests(spec: Spec) -> tuple[float, list[TestCase]]:
    rules = health_rules(spec)
    limits = [float(m) for r in rules for m in re.findall(r" > (\d+)$", r.expr)]
    step = _step([*(r.for_ for r in rules), *limits])
    base = base_labels(spec)
    database = sorted(spec.databases)[0] if spec.databases else "app"
    cases: list[TestCase] = []
    for rule in rules:
        wait = rule.for_
        if rule.alert == "KpiExporterAbsent":
            absent = TestCase()
            absent.add_series(SelfMetric.BUILD, base, ramp(1, 0, _steps(wait, step)))
            eq = promql.parse_matchers(spec.exporter.rule_selector())
            labels = {m.name: m.value for m in eq if m.op == "="}
            absent.expect(wait - step, rule, [])
            absent.expect(wait, rule, [(labels, 1.0)])
            present = TestCase()
            present.add_series("up", base, ramp(1, 0, _steps(wait, step)))
            present.expect(wait + step, rule, [])
            cases += [absent, present]
            continue
        match = re.search(r"(\w+)\{[^}]*\}", rule.expr)
        assert match is not None
        metric = match.group(1)
        labels = dict(base)
        if metric == SelfMetric.DATABASE_UP:
            labels["database"] = database
        kpi_names = re.search(r'kpi=~"([^"]+)"', rule.expr)
        if metric in (SelfMetric.KPI_UP, SelfMetric.LAST_SUCCESS):
            names = kpi_names.group(1).split("|") if kpi_names else [spec.kpis[0].name]
            labels["kpi"] = names[0]
            if rule.label("database") is None:  # KPIs on several databases: per database
                labels["database"] = spec.databases_of(spec.kpi(names[0]))[0]
        broken, fine = TestCase(), TestCase()
        if rule.alert == "KpiExporterKpiStale":
            limit = float(rule.expr.rsplit(" > ", 1)[1])
            active = (math.floor(limit / step) + 1) * step
            fire = active + wait
            broken.add_series(metric, labels, ramp(0, 0, _steps(fire, step)))
            fine.add_series(metric, labels, ramp(0, step, _steps(fire, step)))
            value = fire
        else:
            active, fire, value = 0.0, wait, 0.0
            broken.add_series(metric, labels, ramp(0, 0, _steps(fire, step)))
            fine.add_series(metric, labels, ramp(1, 0, _steps(fire, step)))
        broken.expect(active + wait - step, rule, [])
        broken.expect(fire, rule, [(labels, value)])
        fine.expect(fire, rule, [])
        cases += [broken, fine]
    return step, cases
