"""What every command shares: the -c option, loading the spec or exiting 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from exporter.spec.loading import LoadedSpec, SpecError, load_spec

EXIT_SPEC = 2


config_option = click.option(
    "-c",
    "--config",
    "configs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Spec file or directory of *.yaml; repeat to merge several.",
)


def load_or_exit(configs: Sequence[Path]) -> LoadedSpec:
    """Load the spec or print every problem and exit 2."""
    try:
        return load_spec(configs)
    except SpecError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) in the spec", err=True)
        sys.exit(EXIT_SPEC)


def exit_on(problems: list[str], where: str) -> None:
    """Print each problem and a count, then exit 2; nothing when there are none."""
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) {where}", err=True)
        sys.exit(EXIT_SPEC)


F = TypeVar("F", bound=Callable[..., Any])

# The options of the commands that read Prometheus' HTTP API (report, verify, backtest).
prometheus_option = click.option(
    "--prometheus", "url", required=True, help="Prometheus base URL (http://host:9090)."
)
ca_file_option = click.option(
    "--ca-file", type=click.Path(exists=True), help="CA bundle for an https Prometheus."
)


def timeout_option(default: str) -> Callable[[F], F]:
    """--timeout per Prometheus query, as a duration (each command has its own default)."""
    return click.option(
        "--timeout", "timeout_text", default=default, show_default=True, help="Per query."
    )
