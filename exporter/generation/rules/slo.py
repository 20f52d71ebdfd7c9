"""SLO rules of a ratio: error ratios over the burn windows, budget left, burn-rate alerts."""

from __future__ import annotations

from fractions import Fraction

from exporter.conventions import (
    BURN_WINDOWS,
    budget_record_name,
    burn_alert_name,
    error_ratio_record_name,
    sample_record_names,
    words,
)
from exporter.generation import promql
from exporter.generation.promql import duration
from exporter.generation.rules.model import (
    AlertRule,
    RecordRule,
    alert_rule,
    capital,
    label_list,
    number,
)
from exporter.generation.rules.ratios import error_events, error_ratio_expr
from exporter.spec.labels import ratio_labels
from exporter.spec.model import Ratio, Slo, Spec


def error_budget(slo: Slo) -> str:
    """The error budget as a fraction, written exactly: 99.9 -> '0.001'."""
    budget = (100 - Fraction(str(slo.objective))) / 100
    return format(float(budget), ".12g")


# Windows up to an hour read the scraped counters; longer ones sum 5-minute rates sampled once
# every 5 minutes (a 30d window reads 8,640 samples a series instead of 172,800 raw ones).
RAW_WINDOW_LIMIT = 3600.0
SAMPLE_INTERVAL = 300.0


def slo_windows(ratio: Ratio) -> list[float]:
    assert ratio.slo is not None
    windows = {w.long for w in BURN_WINDOWS} | {w.short for w in BURN_WINDOWS}
    return sorted(windows | {ratio.slo.period})


def slo_records(spec: Spec, ratio: Ratio) -> tuple[list[RecordRule], list[RecordRule]]:
    """(fast, sampled): error ratios over the short burn windows from the counters; and, in a
    group evaluated every SAMPLE_INTERVAL, the sampled rates, the error ratios over the long
    windows and the SLO period summed from them, and the budget remaining."""
    assert ratio.slo is not None
    windows = slo_windows(ratio)
    fast = [
        RecordRule(
            error_ratio_record_name(ratio.name, window), error_ratio_expr(spec, ratio, window)
        )
        for window in windows
        if window <= RAW_WINDOW_LIMIT
    ]
    errors, events = sample_record_names(ratio.name, SAMPLE_INTERVAL)
    sampled = [
        RecordRule(errors, error_events(spec, ratio, SAMPLE_INTERVAL)),
        RecordRule(events, promql.ratio_sum(spec, ratio, ratio.total, SAMPLE_INTERVAL)),
    ]
    for window in windows:
        if window > RAW_WINDOW_LIMIT:
            span = duration(window)
            sampled.append(
                RecordRule(
                    error_ratio_record_name(ratio.name, window),
                    f"sum_over_time({errors}[{span}]) / sum_over_time({events}[{span}])",
                )
            )
    sampled.append(
        RecordRule(
            budget_record_name(ratio.name),
            f"1 - ({error_ratio_record_name(ratio.name, ratio.slo.period)} / "
            f"{error_budget(ratio.slo)})",
        )
    )
    return fast, sampled


def burn_alerts(spec: Spec, ratio: Ratio) -> list[AlertRule]:
    """The SRE workbook's page and ticket burn-rate alerts for a ratio's SLO."""
    slo = ratio.slo
    assert slo is not None
    budget = error_budget(slo)
    subject = capital(words(ratio.name.removesuffix("_ratio")))
    rules = []
    for window in BURN_WINDOWS:
        factor = number(window.factor(slo.period))
        limit = f"({factor} * {budget})"
        expr = (
            f"{error_ratio_record_name(ratio.name, window.long)} > {limit}\n"
            f"and\n{error_ratio_record_name(ratio.name, window.short)} > {limit}"
        )
        rules.append(
            alert_rule(
                spec,
                burn_alert_name(ratio.name),
                expr,
                window.for_,
                {
                    "severity": window.severity,
                    "kpi": ratio.name,
                    "long": duration(window.long),
                    "short": duration(window.short),
                },
                f"{subject} is burning its error budget too fast.",
                f"{subject} failed {{{{ $value | humanizePercentage }}}} of events over the last "
                f"{duration(window.long)}: {factor}x the error budget of its "
                f"{number(slo.objective)}% objective over {duration(slo.period)}"
                f"{label_list(ratio_labels(spec, ratio))}.",
            )
        )
    return rules
