"""`backtest`: how often each generated alert would have fired over Prometheus' history."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from exporter.cli.common import (
    ca_file_option,
    config_option,
    load_or_exit,
    prometheus_option,
    timeout_option,
)


def _share(text: str) -> float:
    """'2%' or '0.02' as a fraction of the window."""
    number = text.strip()
    try:
        value = float(number[:-1]) / 100 if number.endswith("%") else float(number)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a share: give 2% or 0.02") from None
    if not 0 <= value <= 1:
        raise click.BadParameter(f"{text!r} is not between 0% and 100%")
    return value


@click.command()
@config_option
@prometheus_option
@click.option(
    "--since", "since_text", required=True, help="Start: a duration ago (7d), RFC 3339 or epoch."
)
@click.option("--until", "until_text", help="End (default now): a duration ago, RFC 3339 or epoch.")
@click.option("--max-firing", "max_text", help="Exit 1 when an alert fires longer than this share.")
@click.option(
    "--require-data",
    is_flag=True,
    help="Exit 1 when an alert has no data (no series it reads holds a sample in the window).",
)
@click.option("--alert", "only", multiple=True, help="Only this alert; repeat for several.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@timeout_option("60s")
@ca_file_option
def backtest(
    configs: tuple[Path, ...],
    url: str,
    since_text: str,
    until_text: str | None,
    max_text: str | None,
    require_data: bool,
    only: tuple[str, ...],
    fmt: str,
    timeout_text: str,
    ca_file: str | None,
) -> None:
    """Evaluate every generated alert over [--since, --until] at its group's interval, honouring
    `for`; print each alert's episodes, firing time, longest episode and share of the window,
    or "no data" when no series it reads holds a sample then. Exit 1 when an alert fires longer
    than --max-firing (or, with --require-data, has no data), 2 when Prometheus cannot be read."""
    from exporter.generation.report import PrometheusError
    from exporter.history.backfill import parse_instant
    from exporter.history.backtest import BacktestApi, alerts_of, over_max_firing, render
    from exporter.history.backtest import backtest as run_backtest
    from exporter.spec.fields import parse_duration

    spec = load_or_exit(configs).spec
    now = time.time()
    try:
        since = parse_instant(since_text, now)
        until = parse_instant(until_text, now) if until_text else now
        timeout = parse_duration(timeout_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if since >= until:
        raise click.BadParameter("--since must be before --until")
    max_share = _share(max_text) if max_text is not None else None
    known = {rule.alert for rule, _, _ in alerts_of(spec)}
    unknown = sorted(set(only) - known)
    if unknown:
        raise click.BadParameter(
            f"no generated alert named {', '.join(unknown)}", param_hint="--alert"
        )
    api = BacktestApi(url, timeout, ca_file or True)
    try:
        histories = run_backtest(spec, api, since, until, only)
    except PrometheusError as exc:
        click.echo(f"backtest: {exc}", err=True)
        sys.exit(2)
    click.echo(render(histories, max_share, fmt), nl=False)
    empty = require_data and any(h.no_data for h in histories)
    sys.exit(1 if over_max_firing(histories, max_share) or empty else 0)
