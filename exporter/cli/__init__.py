"""The `kpi-exporter` command line: run, once, check, schema, state, report, backfill, verify,
backtest, generate, dashboards; the one place that wires the layers together."""

from __future__ import annotations

import click

from exporter import __version__
from exporter.cli.backtest import backtest
from exporter.cli.generate import dashboards, generate, report
from exporter.cli.history import backfill, verify
from exporter.cli.inspect import check, schema, state
from exporter.cli.serve import once, run


@click.group()
@click.version_option(__version__, prog_name="kpi-exporter")
def main() -> None:
    """Business-database KPIs as Prometheus metrics, alert rules and Grafana dashboards."""


for command in (run, once, check, schema, state, report, backfill, verify, generate, dashboards):
    main.add_command(command)
main.add_command(backtest)
