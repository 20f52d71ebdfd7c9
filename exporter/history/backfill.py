"""`kpi-exporter backfill`: the KPIs' history as OpenMetrics, turned into TSDB blocks by promtool.

Beside each KPI's samples go the exporter's own series the freshness rules read
(exporter.history.selfseries): every step is a successful poll.

The output is cut at promtool's block boundaries (2 h, aligned to the epoch): each window is
one OpenMetrics file holding every replayed KPI's samples of that window, and promtool turns
it into one block (it re-reads its whole input once per block window, so one window per file
keeps that linear). Memory stays bounded by one window's lines plus each KPI's totals.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess  # nosec B404  # promtool, with argument lists, never a shell
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from exporter.collection.series import ResultError
from exporter.history.replay import CursorReplay, QueryReplay, StepGrid
from exporter.history.selfseries import OwnSeries, self_lines
from exporter.sources.base import QueryError, Source
from exporter.sources.registry import open_source
from exporter.spec.fields import parse_duration
from exporter.spec.model import Kpi, Spec
from exporter.spec.params import placeholders

BLOCK_SECONDS = 7200  # promtool's (and Prometheus') default block range
PROMTOOL_WORKERS = 4
OWN_LABELS = ("kpi", "database")  # the labels the exporter puts on its per-KPI series
Format = Literal["blocks", "openmetrics"]
Replay = CursorReplay | QueryReplay
Progress = Callable[[int, int, int], None]  # (steps written, steps in all, rows read)


class BackfillError(Exception):
    """Backfill cannot go on; the message names the KPI, step or tool."""


@dataclass
class Summary:
    """What a backfill did, for the closing lines."""

    replayed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per KPI, saying why
    late: list[str] = field(default_factory=list)  # KPIs with rows beyond the reorder window
    steps: int = 0
    samples: int = 0  # the KPIs'
    own_samples: int = 0  # the exporter's own series' (selfseries)
    rows: int = 0
    files: list[Path] = field(default_factory=list)


def parse_instant(text: str, now: float) -> float:
    """Epoch seconds from a duration ago ('60d'), RFC 3339 ('2024-05-01T00:00:00Z') or a number."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give a duration ago (60d), RFC 3339 or epoch seconds"
        ) from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()


def format_instant(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def skip_reason(kpi: Kpi) -> str | None:
    """Why a KPI has no history to replay, or None when it has."""
    if kpi.cursor is not None:
        if kpi.event_time_column is None:
            return "a cursor KPI without event_time: add `event_time: COLUMN` to replay it"
        return None
    if "now" not in placeholders(kpi.query):
        return "its query does not use :now, so it cannot be evaluated at a past instant"
    return None


def series_labels(spec: Spec, target: dict[str, str]) -> dict[str, str]:
    """The constant labels of every backfilled series: exporter.labels plus the target labels
    Prometheus adds on scraping (job from exporter.job unless given)."""
    labels = {"job": spec.exporter.job, **target}
    for name in labels:
        if name in OWN_LABELS:
            raise BackfillError(
                f"target label {name!r} is also a label of the exporter's own series: "
                f"Prometheus would rename theirs exported_{name}"
            )
    by_database = {  # the database label and databases' labels, by the KPI that gets them
        name: kpi.name
        for kpi in spec.kpis
        for database in spec.databases_of(kpi)
        for name in spec.series_labels(kpi, database)
        if name not in spec.exporter.labels
    }
    for name in labels:
        clash = [k.name for k in spec.kpis if name in k.labels]
        if name in by_database:
            clash.append(f"{by_database[name]}'s databases")
        if name in spec.exporter.labels or clash:
            where = "exporter.labels" if name in spec.exporter.labels else f"KPI {clash[0]}"
            raise BackfillError(
                f"target label {name!r} is also set by {where}: Prometheus would rename it "
                f"exported_{name}, so backfilled series would not join the live ones"
            )
    return {**spec.exporter.labels, **labels}


def backfill(
    spec: Spec,
    *,
    since: float,
    until: float,
    step: float,
    only: Sequence[str],
    target: dict[str, str],
    output: Path,
    fmt: Format,
    reorder: float,
    progress: Progress | None = None,
) -> Summary:
    """Replay the chosen KPIs between `since` and `until` into `output` (blocks or text)."""
    promtool = _promtool() if fmt == "blocks" else ""
    grid = StepGrid.between(since, until, step)
    if grid.count == 0:
        raise BackfillError("no step between --since and --until")
    labels = series_labels(spec, target)
    summary = Summary(steps=grid.count)
    sources: dict[str, Source] = {}
    replays: list[Replay] = []
    owned: list[OwnSeries] = []  # each replay's self-metric series
    scraped = {"job": spec.exporter.job, **target}  # what Prometheus adds to them
    now = time.time()
    try:
        for kpi in spec.kpis:
            if only and kpi.name not in only:
                continue
            reason = skip_reason(kpi)
            if reason is not None:
                summary.skipped.append(f"skipped {kpi.name}: {reason}")
                continue
            for database in spec.databases_of(kpi):  # one replay per database, one family
                if database not in sources:
                    sources[database] = open_source(
                        database, spec.databases[database], spec.exporter.pool_timeout
                    )
                source, metric = sources[database], spec.metric_name(kpi)
                constant = {**spec.series_labels(kpi, database), **labels}
                replay: Replay
                if kpi.cursor is not None:
                    window = 0.0 if kpi.event_time_column == kpi.cursor else reorder
                    replay = CursorReplay(kpi, metric, constant, source, grid, now, window)
                else:
                    replay = QueryReplay(kpi, metric, constant, source, grid)
                replays.append(replay)
                owned.append(OwnSeries.of(replay, kpi.name, database, scraped))
            summary.replayed.append(kpi.name)
        if replays:
            _write_windows(replays, owned, grid, output, promtool, summary, progress)
    finally:
        for source in sources.values():
            source.close()
    for replay in replays:
        summary.rows += replay.rows_read
        if replay.late_rows:
            summary.late.append(
                f"{replay.kpi.name}: {replay.late_rows} row(s) came up to "
                f"{replay.latest_late:.0f}s behind a later row in cursor order and were "
                "counted at the next step (raise --reorder-window)"
            )
    return summary


def _write_windows(
    replays: list[Replay],
    owned: list[OwnSeries],
    grid: StepGrid,
    output: Path,
    promtool: str,
    summary: Summary,
    progress: Progress | None,
) -> None:
    output.mkdir(parents=True, exist_ok=True)
    staging = output / ".backfill-openmetrics" if promtool else output
    staging.mkdir(exist_ok=True)
    # promtool mostly waits for its block's fsync: a few run at once while we read on
    converting: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=PROMTOOL_WORKERS) as pool:
        start = 0
        while start < grid.count:
            window = int(grid.time(start) // BLOCK_SECONDS) * BLOCK_SECONDS
            end = min(grid.count, grid.index_at(window + BLOCK_SECONDS))  # edge: next window
            path = staging / f"backfill-{window}.om"
            _write_window(replays, owned, grid, end, path, summary)
            if promtool:
                converting.append(pool.submit(_create_blocks, promtool, path, output))
                while len(converting) > 2 * PROMTOOL_WORKERS:  # bounds the files on disk
                    converting.pop(0).result()
            else:
                summary.files.append(path)
            start = end
            if progress is not None:
                progress(end, grid.count, sum(r.rows_read for r in replays))
        for job in converting:
            job.result()
    if promtool:
        staging.rmdir()


def _write_window(
    replays: list[Replay],
    owned: list[OwnSeries],
    grid: StepGrid,
    end: int,
    path: Path,
    summary: Summary,
) -> None:
    """One OpenMetrics file: each KPI's family with its samples up to step `end` (a KPI on
    several databases has a replay per database, adjacent: one header, then each one's),
    then the exporter's own families for the same steps."""
    headed: set[str] = set()
    with path.open("w", encoding="utf-8") as out:
        for replay in replays:
            try:
                lines = replay.lines(end)
            except (ResultError, QueryError) as exc:
                at = format_instant(grid.time(min(replay.next_step, grid.count - 1)))
                raise BackfillError(f"KPI {replay.kpi.name} at {at}: {exc.message}") from None
            if lines:
                if replay.kpi.name not in headed:
                    out.write(replay.header)
                    headed.add(replay.kpi.name)
                out.writelines(lines)
                summary.samples += len(lines)
        own = self_lines(owned)
        out.writelines(own)
        summary.own_samples += sum(not line.startswith("#") for line in own)
        out.write("# EOF\n")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise BackfillError(
            "promtool not found: install it (Debian/Ubuntu: apt-get install prometheus) "
            "or write the text only with --format openmetrics"
        )
    return path


def _create_blocks(promtool: str, path: Path, output: Path) -> None:
    result = subprocess.run(  # nosec B603  # fixed argument list, our own file names
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(path), str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackfillError(
            f"promtool could not turn {path.name} into blocks: {detail[-1] if detail else '?'}"
        )
    path.unlink()


def backfill_rules(
    rule_file: Path, url: str, start: float, end: float, step: float, output: Path
) -> None:
    """Evaluate the recording rules over the backfilled range against a Prometheus that holds
    the backfilled data, writing their blocks into `output` (promtool's rule backfill).

    promtool offsets a group's evaluations by a hash of its file's path as given and its name:
    the file is named without a directory, so every run evaluates at the same instants and a
    second pass rewrites the first pass's samples (deduplicated) instead of adding more."""
    result = subprocess.run(  # nosec B603  # fixed argument list
        [
            _promtool(),
            "tsdb",
            "create-blocks-from",
            "rules",
            "--quiet",
            f"--url={url}",
            f"--start={int(start)}",
            f"--end={int(end)}",
            f"--eval-interval={int(step)}s",
            f"--output-dir={output.resolve()}",
            rule_file.name,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=rule_file.parent,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackfillError(f"promtool rule backfill failed: {detail[-1] if detail else '?'}")
