"""The exporter's own series that a backfill writes beside the KPIs: what a healthy exporter
polling at each step would have published and the freshness rules read.

At each step every replayed KPI (on each of its databases) gets its last successful poll (the
step's time) and, for a cursor KPI once a row is read, its cursor lag: the step's time minus
the newest event time of the rows up to it, as the live poll computes it from the rows it
has read (exporter.collection.polls). Without them the backfilled range would read as stale
data throughout. Labels are the live ones: kpi and database, plus the target labels
(job and --label); the exporter's own labels are not on its self-metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from exporter.conventions import SelfMetric
from exporter.history.replay import stamp
from exporter.serving.exposition import family_header, format_value, label_block


class Polled(Protocol):
    @property
    def polled(self) -> list[tuple[float, float | None]]: ...  # (step time, newest event time)


@dataclass(frozen=True)
class OwnSeries:
    """One replay and the rendered labels of its self-metric series."""

    replay: Polled
    labels: str

    @classmethod
    def of(cls, replay: Polled, kpi: str, database: str, target: dict[str, str]) -> OwnSeries:
        return cls(
            replay, label_block(sorted({**target, "kpi": kpi, "database": database}.items()))
        )


def self_lines(owned: Sequence[OwnSeries]) -> list[str]:
    """The two families' lines for the steps the replays rendered last: each header once
    (OpenMetrics allows a family once per exposition), then every replay's samples."""
    success = [
        f"{SelfMetric.LAST_SUCCESS}{own.labels} {format_value(at)} {stamp(at)}\n"
        for own in owned
        for at, _ in own.replay.polled
    ]
    lag = [
        f"{SelfMetric.CURSOR_LAG}{own.labels} {format_value(max(0.0, at - newest))} {stamp(at)}\n"
        for own in owned
        for at, newest in own.replay.polled
        if newest is not None
    ]
    out: list[str] = []
    for metric, lines in ((SelfMetric.LAST_SUCCESS, success), (SelfMetric.CURSOR_LAG, lag)):
        if lines:
            out.append(family_header(metric.value, "gauge", metric.help, True))
            out.extend(lines)
    return out
