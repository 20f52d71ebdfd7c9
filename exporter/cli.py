"""The `kpi-exporter` command line: run, check, once, schema, generate, state, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from exporter import __version__
from exporter.loading import LoadedSpec, SpecError, load_spec
from exporter.spec import Spec

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


@click.group()
@click.version_option(__version__, prog_name="kpi-exporter")
def main() -> None:
    """Business-database KPIs as Prometheus metrics, alert rules and Grafana dashboards."""


@main.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editors)."""
    click.echo(json.dumps(Spec.model_json_schema(by_alias=True), indent=2, sort_keys=True))


@main.group()
def generate() -> None:
    """Generate Prometheus rules or Grafana dashboards from the spec."""


if __name__ == "__main__":
    main()
