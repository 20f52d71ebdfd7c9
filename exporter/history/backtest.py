"""`kpi-exporter backtest`: how often each generated alert would have fired over the history
Prometheus holds.

Each alert's expr is evaluated with range queries at its group's evaluation interval; a label
set the expr returns at consecutive steps is one run. As in Prometheus' rule manager, a run
turns firing at the first step at least `for` after the run began and stays firing until the
first step the expr no longer returns it, so a run shorter than `for` never fires. A run
already going at the window's start is taken to begin there (what came before is unknown).
An alert none of whose input series holds a sample in the window is reported as "no data"
(exporter.history.inputs): its zero episodes (or firing `absent`) say nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from exporter.generation.report import PrometheusApi
from exporter.generation.rules.build import ALERT_INTERVAL, build_rules
from exporter.generation.rules.model import AlertRule
from exporter.history.backfill import format_instant
from exporter.history.inputs import metric_names, probe
from exporter.spec.model import Spec

MAX_POINTS = 11_000  # Prometheus refuses a query_range of more points per series than this
LabelSet = tuple[tuple[str, str], ...]


class RangeSource(Protocol):
    def range_series(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[float]]]: ...

    def has_samples(self, name: str, since: float, until: float) -> bool: ...


class BacktestApi(PrometheusApi):
    """The Prometheus client with a range query that keeps each series' labels."""

    def range_series(
        self, expr: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[float]]]:
        """Each series `expr` returns between start and end: its labels and the step times
        at which it has a value."""
        data = self._get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return [
            (dict(series.get("metric") or {}), [float(t) for t, _ in series.get("values", [])])
            for series in data.get("result") or []
        ]

    def has_samples(self, name: str, since: float, until: float) -> bool:
        """Whether any series named `name` has a sample in (since, until]."""
        expr, at = probe(name, since, until)
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        return bool(data.get("result"))


@dataclass(frozen=True)
class Episode:
    """One time an alert fired for one label set: from `start` until `end` (exclusive)."""

    labels: dict[str, str]
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class AlertHistory:
    alert: str
    group: str
    step: float
    for_: float
    window: float
    episodes: list[Episode]
    reads: list[str] = field(default_factory=list)  # the metric names its expr selects
    missing: list[str] = field(default_factory=list)  # those without a sample in the window

    @property
    def no_data(self) -> bool:
        """Every series it reads is empty in the window: its episodes say nothing."""
        return bool(self.reads) and self.missing == self.reads

    @property
    def firing(self) -> float:
        return sum(e.seconds for e in self.episodes)

    @property
    def longest(self) -> float:
        return max((e.seconds for e in self.episodes), default=0.0)

    @property
    def share(self) -> float:
        """Firing time over the window; label sets firing at once add up, so it may pass 1."""
        return self.firing / self.window if self.window > 0 else 0.0


def firing_episodes(
    times: Iterable[float], step: float, for_: float, labels: dict[str, str] | None = None
) -> list[Episode]:
    """The episodes of one label set, from the step times at which its expr returned it."""
    episodes: list[Episode] = []
    ordered = sorted(times)
    run_start: float | None = None
    previous = -math.inf
    for moment in [*ordered, math.inf]:
        if run_start is not None and moment - previous > 1.5 * step:
            # The rule manager checks `for` at each evaluation: the first step it has held.
            held = math.ceil(round(for_ / step, 9)) * step
            if run_start + held <= previous:
                episodes.append(Episode(dict(labels or {}), run_start + held, previous + step))
            run_start = None
        if run_start is None:
            run_start = moment
        previous = moment
    return episodes


def chunks(start: float, end: float, step: float) -> list[tuple[float, float]]:
    """[start, end] cut at step multiples into pieces of at most MAX_POINTS steps each."""
    count = math.floor(round((end - start) / step, 9)) + 1
    pieces = []
    for first in range(0, count, MAX_POINTS):
        last = min(first + MAX_POINTS, count) - 1
        pieces.append((start + first * step, start + last * step))
    return pieces


def backtest_alert(
    prometheus: RangeSource,
    rule: AlertRule,
    group: str,
    step: float,
    since: float,
    until: float,
    present: dict[str, bool] | None = None,
) -> AlertHistory:
    """The alert's episodes over [since, until] and which of its inputs are empty there
    (`present` caches, by metric name, whether it has samples: alerts share inputs)."""
    runs: dict[LabelSet, list[float]] = {}
    for start, end in chunks(since, until, step):
        for labels, times in prometheus.range_series(rule.expr, start, end, step):
            runs.setdefault(tuple(sorted(labels.items())), []).extend(times)
    episodes = [
        episode
        for key in sorted(runs)
        for episode in firing_episodes(runs[key], step, rule.for_, dict(key))
    ]
    episodes.sort(key=lambda e: (e.start, sorted(e.labels.items())))
    known = {} if present is None else present
    reads = metric_names(rule.expr)
    for name in reads:
        if name not in known:
            known[name] = prometheus.has_samples(name, since, until)
    missing = [name for name in reads if not known[name]]
    return AlertHistory(rule.alert, group, step, rule.for_, until - since, episodes, reads, missing)


def alerts_of(spec: Spec, only: Sequence[str] = ()) -> list[tuple[AlertRule, str, float]]:
    """Every generated alert (or those named in `only`) with its group and evaluation step."""
    found = []
    for group in build_rules(spec).alerts:
        for rule in group.rules:
            if isinstance(rule, AlertRule) and (not only or rule.alert in only):
                found.append((rule, group.name, group.interval or ALERT_INTERVAL))
    return found


def backtest(
    spec: Spec, prometheus: RangeSource, since: float, until: float, only: Sequence[str] = ()
) -> list[AlertHistory]:
    present: dict[str, bool] = {}
    return [
        backtest_alert(prometheus, rule, group, step, since, until, present)
        for rule, group, step in alerts_of(spec, only)
    ]


def over_max_firing(histories: Sequence[AlertHistory], max_share: float | None) -> list[str]:
    """The alerts (with data) that fire longer than `max_share` of the window."""
    if max_share is None:
        return []
    return [h.alert for h in histories if not h.no_data and h.share > max_share]


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.2f}h"


def render(histories: Sequence[AlertHistory], max_share: float | None, fmt: str) -> str:
    """The report as a table (one line per alert, then its episodes) or as JSON. An alert
    without data is marked so, never judged against --max-firing."""
    over = over_max_firing(histories, max_share)
    if fmt == "json":
        return (
            json.dumps(
                {
                    "alerts": [
                        {
                            **{k: v for k, v in asdict(h).items() if k != "for_"},
                            "for": h.for_,
                            "firing_seconds": h.firing,
                            "longest_seconds": h.longest,
                            "share": h.share,
                            "no_data": h.no_data,
                            "episodes": [{**asdict(e), "seconds": e.seconds} for e in h.episodes],
                        }
                        for h in histories
                    ],
                    "over_max_firing": over,
                    "no_data": sorted({h.alert for h in histories if h.no_data}),  # any rule
                },
                indent=2,
            )
            + "\n"
        )
    lines = [f"{'ALERT':<40} {'EPISODES':>8} {'FIRING':>9} {'LONGEST':>9} {'SHARE':>8}"]
    for h in histories:
        if h.no_data:
            lines.append(f"{h.alert:<40} {'no data':>8}  (no sample of {', '.join(h.missing)})")
            continue
        mark = "  over --max-firing" if h.alert in over else ""
        lines.append(
            f"{h.alert:<40} {len(h.episodes):>8} {_hours(h.firing):>9} {_hours(h.longest):>9}"
            f" {100 * h.share:>7.3f}%{mark}"
        )
        for e in h.episodes:
            shown = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
            lines.append(f"    {format_instant(e.start)}  {_hours(e.seconds):>8}  {{{shown}}}")
    return "\n".join(lines) + "\n"
