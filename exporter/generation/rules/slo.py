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
from exporter.generation.rules.ratios import ratio_expr, ratio_labels
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


def slo_windows(ratio: Ratio) -> list[float]:
    assert ratio.slo is not None
    windows = {w.long for w in BURN_WINDOWS} | {w.short for w in BURN_WINDOWS}
    return sorted(windows | {ratio.slo.period})


def slo_records(spec: Spec, ratio: Ratio) -> list[RecordRule]:
    """Error ratios over every burn window and the SLO period, and the budget remaining."""
    assert ratio.slo is not None
    rules = [
        RecordRule(error_ratio_record(ratio, window), f"1 - ({ratio_expr(spec, ratio, window)})")
        for window in slo_windows(ratio)
    ]
    rules.append(
        RecordRule(
            budget_record(ratio),
            f"1 - ({error_ratio_record(ratio, ratio.slo.period)} / {error_budget(ratio.slo)})",
        )
    )
    return rules


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
