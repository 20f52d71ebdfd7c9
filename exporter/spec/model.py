"""The KPI spec model: what a YAML file may say, validated by pydantic."""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from exporter.conventions import SELF_PREFIXES, Compared, Severity, ratio_record_name
from exporter.spec.cron import cron_period
from exporter.spec.fields import (
    CamelCaseName,
    DatabaseRef,
    Duration,
    Identifier,
    LabelName,
    MetricName,
    is_glob,
)
from exporter.spec.params import BUILTIN_PARAMS, CURSOR_PARAMS, placeholders

PanelKind = Literal["stat", "timeseries", "gauge", "bargauge", "table", "heatmap"]
ParamValue = str | int | float | bool | None
Loc = tuple[str | int, ...]


class Strict(BaseModel):
    """Base for every spec section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Replicas(Strict):
    """Identical exporter replicas (an HA pair) told apart by a target label."""

    label: LabelName = Field("replica", description="the target label naming the replica")


class ExporterSettings(Strict):
    port: int = Field(9091, ge=1, le=65535)
    listen: str | None = Field(None, description="HOST:PORT to bind; overrides port")
    namespace: str = Field("", pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*)?$")
    labels: dict[LabelName, str] = Field(default_factory=dict)
    state_dir: Path = Path("./state")
    job: str = Field("kpi-exporter", min_length=1)
    selector: str | None = Field(
        None, description='PromQL label matchers the rules use instead of job="…"'
    )
    runbook_url: str | None = None
    replicas: Replicas | None = Field(
        None, description="rules count an HA pair's series once (deduplicated by replica label)"
    )
    scrape_interval: Duration = Field(15.0, description="how often Prometheus scrapes us")
    pool_timeout: Duration = Field(5.0, description="bound on waiting for a pooled connection")
    database_label: LabelName = Field(
        "database", description="the label naming the database of a KPI on several databases"
    )

    def rule_selector(self) -> str:
        return self.selector if self.selector else f'job="{self.job}"'


class Database(Strict):
    dsn: SecretStr | None = None
    dsn_file: Path | None = None
    max_connections: int = Field(2, ge=1, le=100)
    read_only: bool = True
    connect_timeout: Duration = 5.0
    pgbouncer: bool | None = Field(
        None, description="PostgreSQL behind PgBouncer in transaction pooling; unset: detected"
    )
    labels: dict[LabelName, str] = Field(
        default_factory=dict, description="constant labels on every series read from here"
    )

    @model_validator(mode="after")
    def _one_dsn(self) -> Database:
        if (self.dsn is None) == (self.dsn_file is None):
            raise ValueError("set exactly one of 'dsn' and 'dsn_file'")
        return self


class Threshold(Strict):
    """A threshold alert on a KPI or ratio value."""

    severity: Severity
    above: float | None = None
    below: float | None = None
    for_: Duration = Field(300.0, alias="for")
    aggregate: Literal["max", "min", "sum", "avg"] | None = None
    rate: Duration | None = Field(
        None, description="compare the per-second rate over this window (counters)"
    )
    increase: Duration | None = Field(
        None, description="compare the increase over this window (counters)"
    )
    by: list[LabelName] | None = Field(None, description="labels kept by the aggregate")
    matchers: dict[LabelName, str] = Field(default_factory=dict)
    name: CamelCaseName | None = None
    summary: str | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of 'above' and 'below'")
        if self.rate is not None and self.increase is not None:
            raise ValueError("set at most one of 'rate' and 'increase'")
        return self

    @property
    def compared(self) -> Compared:
        """What the threshold compares: the value, its per-second rate or its increase."""
        return "rate" if self.rate else "increase" if self.increase else "value"


class Anomaly(Strict):
    zscore: float = Field(3.0, gt=0)
    window: Duration = Field(86400.0, description="the season: compare with this long ago")
    min_change: float = Field(0.2, ge=0, description="smallest relative change that counts")
    for_: Duration = Field(600.0, alias="for")
    severity: Severity = "warning"


class Forecast(Strict):
    above: float | None = None
    below: float | None = None
    in_: Duration = Field(alias="in")
    window: Duration = 21600.0
    near: float | None = Field(
        None, description="fire only once the value is past this (default 80% of the limit)"
    )
    for_: Duration = Field(600.0, alias="for")
    severity: Severity = "warning"

    @model_validator(mode="after")
    def _one_bound(self) -> Forecast:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of 'above' and 'below'")
        return self


class Target(Strict):
    value: float
    direction: Literal["above", "below"] = "above"


def _share(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(
            f"objective is the share of good events or time, above 0 and below 1 (0.99 for 99%), "
            f"not {value:g} (a ratio's slo takes a percent)"
        )
    return value


class LatencySlo(Strict):
    """A histogram's latency SLO: events at or under `latency` are good (its `le` bucket)."""

    objective: float = Field(description="share of events at or under `latency`, e.g. 0.99")
    latency: Duration = Field(description="a bucket bound of the histogram, e.g. 30s")
    window: Duration = Field(30 * 86400.0, description="the SLO period, e.g. 28d")
    min_events: int = Field(
        20, ge=0, description="burn-rate alerts need this many events in their long window"
    )
    name: CamelCaseName | None = Field(None, description="the burn-rate alert's name")

    _objective = field_validator("objective")(_share)


class Freshness(Strict):
    """A KPI's freshness SLO: the share of time its data is younger than `max_age`."""

    max_age: Duration
    objective: float = Field(description="share of time the data is fresh, e.g. 0.999")
    window: Duration = Field(30 * 86400.0, description="the SLO period, e.g. 28d")
    name: CamelCaseName | None = Field(None, description="the burn-rate alert's name")

    _objective = field_validator("objective")(_share)


class Kpi(Strict):
    name: MetricName
    help: str = ""
    type: Literal["gauge", "counter", "histogram"]
    database: DatabaseRef = Field(
        description="a database name, a list of them, or a glob over the names under databases"
    )
    interval: Duration | None = None
    schedule: str | None = Field(None, description="cron expression, five fields")
    timeout: Duration = 10.0
    query: str = Field(min_length=1)
    labels: list[LabelName] = Field(default_factory=list)
    value: str | None = None
    unit: str = ""
    params: dict[Identifier, ParamValue] = Field(default_factory=dict)
    max_series: int = Field(10_000, ge=1)
    # event tables (cursor issue)
    cursor: str | None = None
    tiebreak: str | None = None
    initial_cursor: ParamValue = 0
    start: Literal["latest", "earliest"] = "latest"
    settle: Duration | None = None
    batch: int = Field(10_000, ge=1, le=1_000_000)
    buckets: list[float] | None = None
    sum: str | None = Field(None, description="pre-aggregated histogram: the column with _sum")
    event_time: str | None = Field(
        None, description="cursor KPIs: the result column with each row's time (backfill, verify)"
    )
    # rules and dashboards
    alerts: list[Threshold] = Field(default_factory=list)
    absent_for: Duration | None = None
    no_increase_for: Duration | None = None
    anomaly: Anomaly | None = None
    forecast: Forecast | None = None
    target: Target | None = None
    panel: PanelKind | None = None
    slo: LatencySlo | None = Field(None, description="histograms: a latency SLO")
    freshness: Freshness | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                cron_period(value)  # parses it, and refuses one that never fires
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, value: list[float] | None) -> list[float] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one bucket bound")
            if any(b >= c for b, c in itertools.pairwise(value)):
                raise ValueError("bucket bounds must be strictly increasing")
            if value[-1] == float("inf"):
                value = value[:-1]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Kpi:
        if (self.interval is None) == (self.schedule is None):
            raise ValueError("set exactly one of 'interval' and 'schedule'")
        if self.name.startswith(SELF_PREFIXES):
            raise ValueError(f"KPI names may not start with {', '.join(SELF_PREFIXES)}")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"a counter's name must end in '_total' (rename it {self.name}_total)")
        if self.type != "counter" and self.name.endswith("_total"):
            raise ValueError("only counters may end in '_total'")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels repeat a name")
        used = placeholders(self.query)
        known = set(BUILTIN_PARAMS) | set(self.params)
        if self.cursor is not None:
            known |= set(CURSOR_PARAMS)
        unknown = sorted(used - known)
        if unknown:
            raise ValueError(
                f"query uses unknown parameter(s) {', '.join(':' + u for u in unknown)}"
            )
        clash = set(self.params) & (set(BUILTIN_PARAMS) | set(CURSOR_PARAMS))
        if clash:
            raise ValueError(f"params may not redefine built-in {', '.join(sorted(clash))}")
        if self.cursor is not None:
            if self.type == "gauge":
                raise ValueError("'cursor' is for counters and histograms over event tables")
            if "cursor" not in used:
                raise ValueError("a cursor KPI's query must use :cursor")
            if self.tiebreak is not None and "tiebreak" not in used:
                raise ValueError("a KPI with 'tiebreak' must use :tiebreak in its query")
            if "batch" not in used:
                raise ValueError("a cursor KPI's query must use LIMIT :batch")
            if self.cursor in self.labels:
                raise ValueError("the cursor column cannot also be a label")
            if self.event_time is not None and self.event_time in self.labels:
                raise ValueError("the event_time column cannot also be a label")
            if self.event_time is not None and self.event_time == self.value_column:
                raise ValueError("the event_time column cannot also be the value column")
        else:
            for key in ("tiebreak", "settle", "event_time"):
                if getattr(self, key) is not None:
                    raise ValueError(f"'{key}' needs 'cursor'")
        if self.type == "histogram":
            if self.cursor is not None and self.buckets is None:
                raise ValueError("a cursor histogram needs 'buckets'")
            if self.cursor is None and self.buckets is not None:
                raise ValueError(
                    "'buckets' is for cursor histograms; a pre-aggregated histogram "
                    "returns an 'le' column with cumulative counts"
                )
        elif self.buckets is not None or self.sum is not None:
            raise ValueError("'buckets' and 'sum' are for histograms")
        if self.type != "counter" and self.no_increase_for is not None:
            raise ValueError("'no_increase_for' is for counters")
        if self.value_column in self.labels:
            raise ValueError(f"the value column {self.value_column!r} cannot also be a label")
        return self

    @property
    def database_patterns(self) -> list[str]:
        """The `database:` entries: names and globs, as written."""
        return [self.database] if isinstance(self.database, str) else list(self.database)

    @property
    def spans_databases(self) -> bool:
        """Written as a list or a glob: its series carry `exporter.database_label`, however
        many databases match today (a glob that matches one tenant now may match two later,
        and a series must not change its labels when it does)."""
        return not isinstance(self.database, str) or is_glob(self.database)

    @property
    def value_column(self) -> str | None:
        """The result column holding the number; None means each row counts 1."""
        if self.value is not None:
            return self.value
        if self.cursor is not None and self.type == "counter":
            return None
        return "value"

    @property
    def event_time_column(self) -> str | None:
        """The column holding each row's time: `event_time`, else a timestamp cursor's own
        column (one whose `initial_cursor` is a timestamp string); None for other KPIs."""
        if self.cursor is None:
            return None
        if self.event_time is not None:
            return self.event_time
        return self.cursor if isinstance(self.initial_cursor, str) else None

    @property
    def period(self) -> float:
        """Seconds between polls: the interval, or a cron schedule's longest gap between fire
        times (a weekday schedule: the 72 h weekend). Stale alerts, rate windows, `check`'s
        window checks, the retry backoff and the scheduler's misfire grace use it."""
        if self.interval is not None:
            return self.interval
        assert self.schedule is not None
        return cron_period(self.schedule)

    def fingerprint(self) -> str:
        """Identity of what this KPI accumulates: a change resets its cursor state."""
        ident = {
            "query": self.query.strip(),
            "labels": self.labels,
            "buckets": self.buckets,
            "type": self.type,
            "value": self.value,
            "cursor": self.cursor,
            "tiebreak": self.tiebreak,
            "params": self.params,
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


class Slo(Strict):
    objective: float = Field(gt=0, lt=100, description="percent of good events")
    period: Duration = 30 * 86400.0


class Ratio(Strict):
    name: Identifier
    help: str = ""
    good: MetricName
    total: list[MetricName] = Field(min_length=1)
    window: Duration = 300.0
    min_events: int = Field(
        20,
        ge=0,
        description="threshold alerts need this many events in the window, burn-rate alerts "
        "in their long window",
    )
    alerts: list[Threshold] = Field(default_factory=list)
    slo: Slo | None = None
    target: Target | None = None
    panel: PanelKind | None = None

    @field_validator("name")
    @classmethod
    def _snake(cls, value: str) -> str:
        if value.endswith("_total"):
            raise ValueError("a ratio is not a counter: drop '_total'")
        return value

    @property
    def record_name(self) -> str:
        """The recording rule's name, level:metric:operations (job:x:ratio_rate5m)."""
        return ratio_record_name(self.name, self.window)


class FreeAlert(Strict):
    """A free-form alert rule: raw PromQL for what thresholds cannot express."""

    name: CamelCaseName
    expr: str = Field(min_length=1)
    for_: Duration = Field(0.0, alias="for")
    severity: Severity
    summary: str
    description: str
    kpi: str | None = None
    labels: dict[LabelName, str] = Field(default_factory=dict)

    @field_validator("for_", mode="before")
    @classmethod
    def _zero(cls, value: object) -> object:
        return 0.0 if value in (0, "0", "0s") else value


class FreeRecord(Strict):
    """A free-form recording rule: a derived KPI that a ratio cannot express."""

    record: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*[a-zA-Z0-9_]$")
    expr: str = Field(min_length=1)
    help: str = ""
    labels: dict[LabelName, str] = Field(default_factory=dict)


class DashboardRow(Strict):
    title: str = Field(min_length=1)
    kpis: list[str] = Field(min_length=1)


class RedRow(Strict):
    """The KPIs of a dashboard's RED row, where the generator's own pick is not the one
    wanted; rate and errors left out are still picked by that rule."""

    duration: str = Field(description="a histogram KPI: its p95")
    rate: str | None = Field(None, description="a counter KPI, or the histogram (its _count)")
    errors: str | None = Field(None, description="a counter KPI or a ratio (1 - ratio)")


class Dashboard(Strict):
    title: str = Field(min_length=1)
    uid: str | None = Field(None, pattern=r"^[a-zA-Z0-9_-]{1,40}$")
    description: str = ""
    rows: list[DashboardRow] = Field(min_length=1)
    red: RedRow | Literal[False] | None = Field(
        None, description="the RED row's KPIs, or false for none; unset: picked from the rows"
    )


class Spec(Strict):
    exporter: ExporterSettings = Field(default_factory=ExporterSettings)  # type: ignore[arg-type]
    databases: dict[Identifier, Database] = Field(default_factory=dict)
    kpis: list[Kpi] = Field(default_factory=list)
    ratios: list[Ratio] = Field(default_factory=list)
    alerts: list[FreeAlert] = Field(default_factory=list)
    records: list[FreeRecord] = Field(default_factory=list)
    dashboards: list[Dashboard] = Field(default_factory=list)

    def metric_name(self, kpi: Kpi) -> str:
        """The exposed metric name: namespace prefix plus the KPI name."""
        ns = self.exporter.namespace
        return f"{ns}_{kpi.name}" if ns else kpi.name

    def databases_of(self, kpi: Kpi) -> list[str]:
        """The databases a KPI polls, in its list's order, each glob's matches sorted, no name
        twice. A plain name is returned even when undefined (spec checks report it)."""
        names: list[str] = []
        for pattern in kpi.database_patterns:
            if is_glob(pattern):
                found = sorted(n for n in self.databases if fnmatch.fnmatchcase(n, pattern))
            else:
                found = [pattern]
            names += [n for n in found if n not in names]
        return names

    def series_labels(self, kpi: Kpi, database: str) -> dict[str, str]:
        """The constant labels of a KPI's series read from `database`: the exporter's labels,
        the database's own, and the database's name when the KPI spans databases."""
        labels = dict(self.exporter.labels)
        entry = self.databases.get(database)
        if entry is not None:
            labels.update(entry.labels)
        if kpi.spans_databases:
            labels[self.exporter.database_label] = database
        return labels

    def kpi(self, name: str) -> Kpi:
        for kpi in self.kpis:
            if kpi.name == name:
                return kpi
        raise KeyError(name)
