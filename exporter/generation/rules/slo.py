"""The SLO machinery every kind of SLO shares (ratio, latency, freshness): error ratios over the
burn windows, the error budget left, and the SRE workbook's multi-window multi-burn-rate alerts.

Each kind describes its indicator as an `Sli` (ratios.py, latency.py, freshness.py); everything
from there on is written once, here. An event SLI counts bad and all events per second; a time
SLI records a 0/1 series, 1 while good, sampled at its group's interval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from exporter.conventions import BURN_WINDOWS, BurnWindow, SloNames
from exporter.generation.promql import duration
from exporter.generation.rules.model import (
    AlertRule,
    RecordRule,
    alert_rule,
    label_list,
    number,
)
from exporter.spec.model import Slo, Spec

# Windows up to an hour read the scraped counters; longer ones sum 5-minute rates sampled once
# every 5 minutes (a 30d window reads 8,640 samples a series instead of 172,800 raw ones).
RAW_WINDOW_LIMIT = 3600.0
SAMPLE_INTERVAL = 300.0

Rates = Callable[[float], tuple[str, str]]  # window -> (bad, all) events per second, PromQL


@dataclass(frozen=True)
class Sli:
    """What the burn-rate machinery needs to know of one SLO."""

    names: SloNames
    alert: str  # the burn-rate alerts' name
    kpi: str  # their `kpi` label
    objective: Fraction  # the good share, 0-1
    period: float  # seconds
    subject: str  # "Generation success": starts the alerts' sentences
    # the description's start: `{share}` and `{window}` are filled in
    what: str
    labels: Sequence[str]  # labels of the recorded series, named in the description
    rates: Rates | None = None  # event SLIs; None: a time SLI over `names.good`
    min_events: int = 0  # event SLIs: events a burn alert's long window needs (0: no guard)

    @property
    def budget(self) -> str:
        """The error budget as a fraction, written exactly: 0.999 -> '0.001'."""
        return format(float(1 - self.objective), ".12g")

    def limit(self, window: BurnWindow) -> Fraction:
        """The error ratio a burn-rate window alerts above: its burn rate times the budget."""
        return window.factor(self.period) * (1 - self.objective)

    def windows(self) -> list[float]:
        windows = {w.long for w in BURN_WINDOWS} | {w.short for w in BURN_WINDOWS}
        return sorted(windows | {self.period})

    def error_ratio(self, window: float) -> str:
        """The bad share over a raw window: bad / all events, or 1 - the mean of the 0/1 series."""
        if self.rates is None:
            return f"1 - avg_over_time({self.names.good}[{duration(window)}])"
        bad, total = self.rates(window)
        return f"{bad} / {total}"

    def samples(self) -> list[RecordRule]:
        """Recorded once every SAMPLE_INTERVAL: bad and all events per second, or the bad share."""
        errors, events = self.names.samples(SAMPLE_INTERVAL)
        if self.rates is None:
            return [RecordRule(errors, self.error_ratio(SAMPLE_INTERVAL))]
        bad, total = self.rates(SAMPLE_INTERVAL)
        return [RecordRule(errors, bad), RecordRule(events, total)]

    def long_error_ratio(self, window: float) -> str:
        """The bad share over a long window, from the samples."""
        errors, events = self.names.samples(SAMPLE_INTERVAL)
        span = duration(window)
        if self.rates is None:
            return f"avg_over_time({errors}[{span}])"
        return f"sum_over_time({errors}[{span}]) / sum_over_time({events}[{span}])"

    def traffic_guard(self, window: float) -> str | None:
        """`min_events` events seen in `window`: the sampled events per second read once every
        SAMPLE_INTERVAL (a subquery), summed, times SAMPLE_INTERVAL, the sum of the 5m
        increases. A series younger than the window counts the events it has seen (the mean
        rate times the whole window counted that rate as if it had run all along); one read a
        step keeps the sum whatever the samples' interval (promtool evaluates every group at
        its evaluation_interval)."""
        if self.rates is None or self.min_events <= 0:
            return None
        _, events = self.names.samples(SAMPLE_INTERVAL)
        steps = f"{events}[{duration(window)}:{duration(SAMPLE_INTERVAL)}]"
        return f"sum_over_time({steps}) * {number(SAMPLE_INTERVAL)} >= {self.min_events}"


def error_budget(slo: Slo) -> str:
    """A ratio SLO's error budget as a fraction, written exactly: 99.9 (percent) -> '0.001'."""
    budget = (100 - Fraction(str(slo.objective))) / 100
    return format(float(budget), ".12g")


def slo_records(sli: Sli) -> tuple[list[RecordRule], list[RecordRule]]:
    """(fast, sampled): error ratios over the short burn windows; and, in a group evaluated
    every SAMPLE_INTERVAL, the samples, the error ratios over the long windows and the SLO
    period from them, and the budget remaining."""
    windows = sli.windows()
    fast = [
        RecordRule(sli.names.error_ratio(window), sli.error_ratio(window))
        for window in windows
        if window <= RAW_WINDOW_LIMIT
    ]
    sampled = sli.samples()
    sampled += [
        RecordRule(sli.names.error_ratio(window), sli.long_error_ratio(window))
        for window in windows
        if window > RAW_WINDOW_LIMIT
    ]
    sampled.append(
        RecordRule(
            sli.names.budget,
            f"1 - ({sli.names.error_ratio(sli.period)} / {sli.budget})",
        )
    )
    return fast, sampled


def burn_alerts(spec: Spec, sli: Sli) -> list[AlertRule]:
    """The SRE workbook's page and ticket burn-rate alerts for an SLO."""
    objective = number(sli.objective * 100) + "%"
    rules = []
    for window in BURN_WINDOWS:
        factor = number(window.factor(sli.period))
        # one literal, the nearest float to the exact product: the generated tests can then put
        # an error ratio exactly on it (PromQL's own 14.4 * 0.01 is 0.14400000000000002)
        limit = repr(float(sli.limit(window)))
        conditions = [
            f"{sli.names.error_ratio(window.long)} > {limit}",
            f"{sli.names.error_ratio(window.short)} > {limit}",
        ]
        guard = sli.traffic_guard(window.long)
        if guard is not None:
            conditions.append(guard)
        rules.append(
            alert_rule(
                spec,
                sli.alert,
                "\nand\n".join(conditions),
                window.for_,
                {
                    "severity": window.severity,
                    "kpi": sli.kpi,
                    "long": duration(window.long),
                    "short": duration(window.short),
                },
                f"{sli.subject} is burning its error budget too fast.",
                sli.what.format(
                    share="{{ $value | humanizePercentage }}", window=duration(window.long)
                )
                + f": {factor}x the error budget of its {objective} objective over "
                f"{duration(sli.period)}{label_list(sli.labels)}.",
            )
        )
    return rules
