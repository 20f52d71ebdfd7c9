"""SLO rules of a ratio: error ratios over the burn windows, budget left, burn-rate alerts."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

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
from exporter.generation.rules.ratios import error_events, error_ratio_expr, ratio_labels
from exporter.spec.model import Ratio, Severity, Slo, Spec


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window multi-burn-rate alert of the SRE workbook (for a 30-day period)."""

    long: float
    short: float
    budget_spent: Fraction  # share of the period's budget that this burn spends in `long`
    severity: Severity
    for_: float

    def factor(self, period: float) -> Fraction:
        """The burn rate: `budget_spent` of the budget spent in `long` (14.4 for 1h of 30d)."""
        return self.budget_spent * Fraction(round(period)) / Fraction(round(self.long))


BURN_WINDOWS = (
    BurnWindow(3600, 300, Fraction(2, 100), "critical", 120),
    BurnWindow(21600, 1800, Fraction(5, 100), "critical", 900),
    BurnWindow(86400, 7200, Fraction(10, 100), "warning", 3600),
    BurnWindow(259200, 21600, Fraction(10, 100), "warning", 10800),
)


def error_ratio_record(ratio: Ratio, window: float) -> str:
    return f"{promql.ratio_record_prefix(ratio)}:error_ratio_rate{duration(window)}"


def budget_record(ratio: Ratio) -> str:
    return f"{promql.ratio_record_prefix(ratio)}:error_budget_remaining"


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


def sample_records(ratio: Ratio) -> tuple[str, str]:
    """The sampled bad and all events per second (every SAMPLE_INTERVAL, over it)."""
    prefix = promql.ratio_record_prefix(ratio)
    window = duration(SAMPLE_INTERVAL)
    return f"{prefix}:error_sample_rate{window}", f"{prefix}:event_sample_rate{window}"


def slo_records(spec: Spec, ratio: Ratio) -> tuple[list[RecordRule], list[RecordRule]]:
    """(fast, sampled): error ratios over the short burn windows from the counters; and, in a
    group evaluated every SAMPLE_INTERVAL, the sampled rates, the error ratios over the long
    windows and the SLO period summed from them, and the budget remaining."""
    assert ratio.slo is not None
    windows = slo_windows(ratio)
    fast = [
        RecordRule(error_ratio_record(ratio, window), error_ratio_expr(spec, ratio, window))
        for window in windows
        if window <= RAW_WINDOW_LIMIT
    ]
    errors, events = sample_records(ratio)
    sampled = [
        RecordRule(errors, error_events(spec, ratio, SAMPLE_INTERVAL)),
        RecordRule(events, promql.ratio_sum(spec, ratio, ratio.total, SAMPLE_INTERVAL)),
    ]
    for window in windows:
        if window > RAW_WINDOW_LIMIT:
            span = duration(window)
            sampled.append(
                RecordRule(
                    error_ratio_record(ratio, window),
                    f"sum_over_time({errors}[{span}]) / sum_over_time({events}[{span}])",
                )
            )
    sampled.append(
        RecordRule(
            budget_record(ratio),
            f"1 - ({error_ratio_record(ratio, ratio.slo.period)} / {error_budget(ratio.slo)})",
        )
    )
    return fast, sampled


def burn_alert_name(ratio: Ratio) -> str:
    return promql.camel(ratio.name.removesuffix("_ratio")) + "ErrorBudgetBurn"


def burn_alerts(spec: Spec, ratio: Ratio) -> list[AlertRule]:
    """The SRE workbook's page and ticket burn-rate alerts for a ratio's SLO."""
    slo = ratio.slo
    assert slo is not None
    budget = error_budget(slo)
    subject = capital(promql.words(ratio.name.removesuffix("_ratio")))
    rules = []
    for window in BURN_WINDOWS:
        factor = number(window.factor(slo.period))
        limit = f"({factor} * {budget})"
        expr = (
            f"{error_ratio_record(ratio, window.long)} > {limit}\n"
            f"and\n{error_ratio_record(ratio, window.short)} > {limit}"
        )
        rules.append(
            alert_rule(
                spec,
                burn_alert_name(ratio),
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
