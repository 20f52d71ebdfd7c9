"""Conventions every layer shares, over plain values: the exporter's own metric names, error
reasons, alert and recording-rule names, SLO burn windows, PromQL durations.

The bottom of the package: it imports nothing from exporter, so the spec checks, the runtime
and the generators can all agree on these facts without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Literal

Severity = Literal["critical", "warning", "info"]
Compared = Literal["value", "rate", "increase"]  # what a threshold compares

# --- error reasons --------------------------------------------------------------------------

Reason = Literal["timeout", "pool", "connection", "sql", "result"]
REASONS: tuple[Reason, ...] = ("timeout", "pool", "connection", "sql", "result")

# --- the exporter's own metrics -------------------------------------------------------------

SELF_PREFIX = "kpi_exporter_"
# KPI names may not start with these: the exporter's own series and the client library's
SELF_PREFIXES = (SELF_PREFIX, "process_", "python_")


class SelfMetric(StrEnum):
    """The exporter's own series, by the name PromQL sees (counters end in _total, info in
    _info); `help` is the HELP text it is exposed with."""

    help: str

    def __new__(cls, name: str, help_text: str) -> SelfMetric:
        member = str.__new__(cls, name)
        member._value_ = name
        member.help = help_text
        return member

    @property
    def family(self) -> str:
        """The name prometheus_client is given: it adds _total to counters, _info to info."""
        return self.value.removesuffix("_total").removesuffix("_info")

    QUERY_DURATION = (
        "kpi_exporter_query_duration_seconds",
        "Time a KPI's query took on its connection, waiting for the connection excluded.",
    )
    QUERY_ERRORS = (
        "kpi_exporter_query_errors_total",
        f"Failed KPI polls by reason: {', '.join(REASONS)}.",
    )
    KPI_UP = ("kpi_exporter_kpi_up", "1 if the KPI's last poll succeeded.")
    LAST_SUCCESS = (
        "kpi_exporter_last_success_timestamp_seconds",
        "When the KPI's last successful poll finished.",
    )
    SERIES = ("kpi_exporter_series", "Series the KPI currently publishes.")
    DATABASE_UP = (
        "kpi_exporter_database_up",
        "1 if the last attempt to reach the database succeeded.",
    )
    CURSOR_LAG = (
        "kpi_exporter_cursor_lag_seconds",
        "Now minus the newest event time read (cursor KPIs with an event time or a time cursor).",
    )
    ROWS_PROCESSED = ("kpi_exporter_rows_processed_total", "Rows a cursor KPI has applied.")
    STATE_WRITE_ERRORS = (
        "kpi_exporter_state_write_errors_total",
        "Failed writes of cursor state (the batch is read again).",
    )
    RELOAD_OK = (
        "kpi_exporter_config_last_reload_successful",
        "1 if the last spec (re)load succeeded.",
    )
    RELOAD_TIME = (
        "kpi_exporter_config_last_reload_success_timestamp_seconds",
        "When the spec was last loaded successfully.",
    )
    CONFIG_HASH = (
        "kpi_exporter_config_hash",
        "Hash of the spec files in force (first 52 bits of their SHA-256).",
    )
    SCRAPES = ("kpi_exporter_scrapes_total", "Answered /metrics requests.")
    BUILD = ("kpi_exporter_build_info", "Version of kpi-exporter.")
    SHARD = ("kpi_exporter_shard_info", "The KPI shard this replica runs.")


# --- durations and names ----------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """The shortest PromQL duration for whole seconds ('90s' -> '90s', '3600' -> '1h')."""
    whole = round(seconds)
    if whole <= 0:
        return f"{max(1, round(seconds * 1000))}ms"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def base_name(name: str) -> str:
    """A metric name without its `_total` (rates of counters drop it)."""
    return name.removesuffix("_total")


def camel(name: str) -> str:
    """`queue_depth_total` -> `QueueDepth` (alert names)."""
    return "".join(part[:1].upper() + part[1:] for part in base_name(name).split("_") if part)


def words(name: str) -> str:
    """`queue_depth_total` -> `queue depth` (sentences)."""
    return base_name(name).replace("_", " ")


# --- alert names ------------------------------------------------------------------------------


def threshold_alert_name(
    kpi_name: str,
    given: str | None,
    over: Compared,
    above: bool,
) -> str:
    """The given name, else `<Kpi>[Rate|Increase]High|Low`."""
    if given:
        return given
    kind = {"value": "", "rate": "Rate", "increase": "Increase"}[over]
    return camel(kpi_name) + kind + ("High" if above else "Low")


def ratio_alert_name(ratio_name: str, given: str | None, above: bool) -> str:
    """The given name, else `<Ratio>High|Low`."""
    return given or camel(ratio_name) + ("High" if above else "Low")


def burn_alert_name(ratio_name: str) -> str:
    """`<Ratio>ErrorBudgetBurn`: every burn-rate alert of a ratio's SLO shares this name."""
    return camel(ratio_name.removesuffix("_ratio")) + "ErrorBudgetBurn"


def latency_burn_alert_name(kpi_name: str) -> str:
    """`<Kpi>LatencyBudgetBurn` for a histogram's latency SLO (a `_seconds` unit left out:
    `queue_job_duration_seconds` -> `QueueJobDurationLatencyBudgetBurn`)."""
    return camel(kpi_name.removesuffix("_seconds")) + "LatencyBudgetBurn"


def freshness_burn_alert_name(kpi_name: str) -> str:
    """`<Kpi>FreshnessBudgetBurn` for a KPI's freshness SLO."""
    return camel(kpi_name) + "FreshnessBudgetBurn"


# --- recording-rule names (level:metric:operations) -------------------------------------------


def ratio_record_prefix(ratio_name: str) -> str:
    """`job:generation_success` for ratio `generation_success_ratio`."""
    return f"job:{ratio_name.removesuffix('_ratio')}"


def ratio_record_name(ratio_name: str, window: float) -> str:
    """The ratio's recording rule: `job:x:ratio_rate5m`."""
    return f"{ratio_record_prefix(ratio_name)}:ratio_rate{format_duration(window)}"


def error_ratio_record_name(ratio_name: str, window: float) -> str:
    """An SLO's error ratio over one window: `job:x:error_ratio_rate1h`."""
    return ratio_slo_names(ratio_name).error_ratio(window)


def events_record_name(ratio_name: str, window: float) -> str:
    """A ratio's events per second over its window (the minimum-traffic guard):
    `job:x:events_rate5m`."""
    return f"{ratio_record_prefix(ratio_name)}:events_rate{format_duration(window)}"


def sample_record_names(ratio_name: str, interval: float) -> tuple[str, str]:
    """An SLO's sampled bad and all events per second: `job:x:error_sample_rate5m`,
    `job:x:event_sample_rate5m`."""
    return ratio_slo_names(ratio_name).samples(interval)


def baseline_record_name(metric: str, op: str, span: float) -> str:
    """A gauge's baseline for anomaly alerts, `op` over `span`: `job:x:avg_over_time1h`."""
    return f"job:{metric}:{op}_over_time{format_duration(span)}"


def budget_record_name(ratio_name: str) -> str:
    """An SLO's error budget left over its period: `job:x:error_budget_remaining`."""
    return ratio_slo_names(ratio_name).budget


@dataclass(frozen=True)
class SloNames:
    """The recording rules of one SLO, all under `prefix` (`job:x`). Error ratios of event SLOs
    are `…:error_ratio_rate1h`; of time SLOs (freshness), `…:error_ratio_avg1h`."""

    prefix: str
    op: Literal["rate", "avg"] = "rate"

    def error_ratio(self, window: float) -> str:
        return f"{self.prefix}:error_ratio_{self.op}{format_duration(window)}"

    def samples(self, interval: float) -> tuple[str, str]:
        """The sampled bad and all events per second (`…:error_sample_rate5m`,
        `…:event_sample_rate5m`); a time SLO only has the first, its bad share (`…_avg5m`)."""
        window = format_duration(interval)
        return (
            f"{self.prefix}:error_sample_{self.op}{window}",
            f"{self.prefix}:event_sample_rate{window}",
        )

    @property
    def budget(self) -> str:
        return f"{self.prefix}:error_budget_remaining"

    @property
    def good(self) -> str:
        """A time SLO's recorded 0/1 series: 1 while the SLI is good (`…:fresh`)."""
        return f"{self.prefix}:fresh"


def ratio_slo_names(ratio_name: str) -> SloNames:
    return SloNames(ratio_record_prefix(ratio_name))


def latency_slo_names(kpi_name: str) -> SloNames:
    """`job:<kpi>_latency:…` for a histogram's latency SLO."""
    return SloNames(f"job:{kpi_name}_latency")


def freshness_slo_names(kpi_name: str) -> SloNames:
    """`job:<kpi>_freshness:…` (without `_total`) for a KPI's freshness SLO."""
    return SloNames(f"job:{base_name(kpi_name)}_freshness", "avg")


def le_value(bound: float) -> str:
    """A histogram bucket's `le` label as the exporter writes it (Python's repr of the float:
    30 -> '30.0', as Prometheus 3 also normalises it); rules select buckets by it."""
    return repr(float(bound))


# --- SLO burn-rate windows --------------------------------------------------------------------


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
