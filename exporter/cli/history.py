"""`backfill` and `verify`: the databases' history into Prometheus, and the proof of it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from exporter.cli.common import (
    ca_file_option,
    config_option,
    load_or_exit,
    prometheus_option,
    timeout_option,
)
from exporter.sources.base import QueryError
from exporter.spec.model import Spec


def _target_labels(pairs: Sequence[str]) -> dict[str, str]:
    from exporter.spec.fields import LABEL_NAME_RE

    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not LABEL_NAME_RE.match(name) or name.startswith("__"):
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--label")
        labels[name] = value
    return labels


class _Progress:
    """One rewritten line on a terminal: steps written, rows read, rate and time left."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, rows: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        left = elapsed * (total - done) / done if done else 0.0
        click.echo(
            f"\r  steps {done}/{total} ({100 * done / total:.0f}%)  rows {rows:,}"
            f" ({rows / elapsed:,.0f}/s)  left {left:.0f}s   ",
            nl=done >= total,
            err=True,
        )


@click.command()
@config_option
@click.option(
    "--since", "since_text", required=True, help="Start: a duration ago (60d), RFC 3339 or epoch."
)
@click.option("--until", "until_text", help="End (default now): a duration ago, RFC 3339 or epoch.")
@click.option("--step", "step_text", default="1m", show_default=True, help="Time between samples.")
@click.option("--kpi", "only", multiple=True, help="Only this KPI; repeat for several.")
@click.option(
    "--label",
    "label_pairs",
    multiple=True,
    help="Target label NAME=VALUE, e.g. instance=host:9091.",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Output directory."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["blocks", "openmetrics"]),
    default="blocks",
    show_default=True,
)
@click.option(
    "--reorder-window",
    "reorder_text",
    default="1m",
    show_default=True,
    help="How far event_time may run behind cursor order (cursor other than event_time).",
)
@click.option(
    "--rules", is_flag=True, help="Backfill the recording rules instead (needs --prometheus)."
)
@click.option("--prometheus", "url", help="Prometheus holding the backfilled data (for --rules).")
def backfill(
    configs: tuple[Path, ...],
    since_text: str,
    until_text: str | None,
    step_text: str,
    only: tuple[str, ...],
    label_pairs: tuple[str, ...],
    output: Path,
    fmt: str,
    reorder_text: str,
    rules: bool,
    url: str | None,
) -> None:
    """Write the KPIs' history as TSDB blocks (or OpenMetrics) from the databases."""
    from exporter.history.backfill import (
        BackfillError,
        backfill_rules,
        format_instant,
        parse_instant,
    )
    from exporter.history.backfill import backfill as run_backfill
    from exporter.spec.fields import parse_duration

    spec = load_or_exit(configs).spec
    now = time.time()
    try:
        since = parse_instant(since_text, now)
        until = parse_instant(until_text, now) if until_text else now
        step, reorder = parse_duration(step_text), parse_duration(reorder_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    unknown = sorted(set(only) - {k.name for k in spec.kpis})
    if unknown:
        raise click.BadParameter(f"no KPI named {', '.join(unknown)}", param_hint="--kpi")
    if since >= until:
        raise click.BadParameter("--since must be before --until")
    try:
        if rules:
            if not url:
                raise click.UsageError("--rules needs --prometheus URL")
            _backfill_rules(spec, url, since, until, step, output, backfill_rules)
            return
        summary = run_backfill(
            spec,
            since=since,
            until=until,
            step=step,
            only=only,
            target=_target_labels(label_pairs),
            output=output,
            fmt=fmt,  # type: ignore[arg-type]
            reorder=reorder,
            progress=_Progress() if sys.stderr.isatty() else None,
        )
    except BackfillError as exc:
        click.echo(f"backfill: {exc}", err=True)
        sys.exit(1)
    for line in summary.skipped:
        click.echo(line, err=True)
    for line in summary.late:
        click.echo(f"late rows: {line}", err=True)
    where = (
        f"blocks in {output}" if fmt == "blocks" else f"{len(summary.files)} file(s) in {output}"
    )
    click.echo(
        f"backfilled {len(summary.replayed)} KPIs: {summary.samples} samples (and"
        f" {summary.own_samples} of the exporter's own series) at {summary.steps} steps"
        f" from {format_instant(since)} to {format_instant(until)}, {summary.rows} rows read;"
        f" {where}"
    )


@click.command()
@config_option
@prometheus_option
@click.option("--windows", type=click.IntRange(1, 10_000), default=24, show_default=True)
@click.option("--window", "window_text", default="1h", show_default=True, help="Window length.")
@click.option(
    "--tolerance", type=float, default=0.0, show_default=True, help="Drift allowed per cell."
)
@click.option("--kpi", "only", multiple=True, help="Only this KPI; repeat for several.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@timeout_option("30s")
@ca_file_option
def verify(
    configs: tuple[Path, ...],
    url: str,
    windows: int,
    window_text: str,
    tolerance: float,
    only: tuple[str, ...],
    fmt: str,
    timeout_text: str,
    ca_file: str | None,
) -> None:
    """Compare Prometheus' stored counters with the database's rows, window by window; exit 1
    when any series drifts beyond --tolerance in any of the last --windows closed windows."""
    from exporter.collection.series import ResultError
    from exporter.generation.report import PrometheusApi, PrometheusError
    from exporter.history.verify import render
    from exporter.history.verify import verify as run_verify
    from exporter.spec.fields import parse_duration

    spec = load_or_exit(configs).spec
    try:
        window, timeout = parse_duration(window_text), parse_duration(timeout_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    unknown = sorted(set(only) - {k.name for k in spec.kpis})
    if unknown:
        raise click.BadParameter(f"no KPI named {', '.join(unknown)}", param_hint="--kpi")
    api = PrometheusApi(url, timeout, ca_file or True)
    try:
        cells, skipped = run_verify(
            spec, api, now=time.time(), windows=windows, window=window, only=only
        )
    except PrometheusError as exc:
        click.echo(f"verify: {exc}", err=True)
        sys.exit(2)
    except (QueryError, ResultError) as exc:
        click.echo(f"verify: database: {exc.message}", err=True)
        sys.exit(2)
    click.echo(render(cells, skipped, tolerance, fmt), nl=False)
    sys.exit(1 if any(abs(c.drift) > tolerance for c in cells) else 0)


def _backfill_rules(
    spec: Spec,
    url: str,
    since: float,
    until: float,
    step: float,
    output: Path,
    run: Callable[[Path, str, float, float, float, Path], None],
) -> None:
    """Generate the recording rules into a temporary directory and backfill them."""
    import tempfile

    from exporter.generation.rule_files import write_files

    with tempfile.TemporaryDirectory() as tmp:
        written = write_files(spec, Path(tmp), "mixin")
        records = [p for p in written if p.name == "prometheus_rules.yaml"]
        if not records:
            click.echo("no recording rules to backfill")
            return
        output.mkdir(parents=True, exist_ok=True)
        run(records[0], url, since, until, step, output)
    click.echo(f"backfilled the recording rules into {output}")
