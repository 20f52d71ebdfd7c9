"""`generate`, `dashboards push` and `report`: the generators' commands."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from exporter.cli.common import (
    EXIT_SPEC,
    ca_file_option,
    config_option,
    load_or_exit,
    prometheus_option,
    timeout_option,
)


@click.command()
@config_option
@prometheus_option
@click.option(
    "--range", "range_text", default="24h", show_default=True, help="Compare with now-RANGE."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "html"]),
    default="table",
    show_default=True,
)
@timeout_option("10s")
@ca_file_option
def report(
    configs: tuple[Path, ...],
    url: str,
    range_text: str,
    fmt: str,
    timeout_text: str,
    ca_file: str | None,
) -> None:
    """Each KPI's value now and one range ago, its trend and target status, from Prometheus."""

    from exporter.generation.report import PrometheusApi, PrometheusError, build_report, render
    from exporter.generation.report_html import render_html
    from exporter.spec.fields import parse_duration

    spec = load_or_exit(configs).spec
    try:
        range_seconds, timeout = parse_duration(range_text), parse_duration(timeout_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    api = PrometheusApi(url, timeout, ca_file or True)
    try:
        result = build_report(spec, api, range_seconds, time.time())
    except PrometheusError as exc:
        click.echo(f"report: {exc}", err=True)
        sys.exit(1)
    click.echo(render_html(result) if fmt == "html" else render(result, fmt), nl=False)


@click.group()
def generate() -> None:
    """Generate Prometheus rules, runbooks or Grafana dashboards from the spec."""


@generate.command("rules")
@config_option
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=Path("rules"), show_default=True
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mixin", "prometheus-operator"]),
    default="mixin",
    show_default=True,
    help="mixin: prometheus_alerts.yaml, prometheus_rules.yaml, tests/; or a PrometheusRule.",
)
def generate_rules(configs: tuple[Path, ...], output: Path, fmt: str) -> None:
    """Write Prometheus alerting and recording rules and their promtool unit tests."""
    from exporter.generation.rule_files import write_files

    try:
        written = write_files(load_or_exit(configs).spec, output, fmt)  # type: ignore[arg-type]
    except ValueError as exc:
        click.echo(f"cannot generate rules: {exc}", err=True)
        sys.exit(EXIT_SPEC)
    for path in written:
        click.echo(str(path))


@generate.command("runbooks")
@config_option
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=Path("runbooks"), show_default=True
)
def generate_runbooks(configs: tuple[Path, ...], output: Path) -> None:
    """Write one Markdown runbook per generated alert (point exporter.runbook_url at them)."""
    from exporter.generation.runbooks import render, write

    for path in write(render(load_or_exit(configs).spec), output):
        click.echo(str(path))


@generate.command("dashboards")
@config_option
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=Path("dashboards"), show_default=True
)
def generate_dashboards(configs: tuple[Path, ...], output: Path) -> None:
    """Write Grafana dashboards (JSON), a provisioning file and a README for the spec."""
    from exporter.generation.dashboards.files import render, write

    for path in write(render(load_or_exit(configs).spec), output):
        click.echo(str(path))


@click.group()
def dashboards() -> None:
    """Work with the generated Grafana dashboards."""


@dashboards.command("push")
@config_option
@click.option("--grafana-url", required=True, help="Base URL of Grafana, e.g. http://grafana:3000")
@click.option("--token-file", type=click.Path(path_type=Path), help="Read the token from a file.")
@click.option("--folder", default="KPI exporter", show_default=True, help="Folder, by title.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per request.")
def dashboards_push(
    configs: tuple[Path, ...],
    grafana_url: str,
    token_file: Path | None,
    folder: str,
    timeout: float,
) -> None:
    """Create or overwrite the dashboards in Grafana (token: GRAFANA_TOKEN or --token-file)."""
    from exporter.generation.dashboards.boards import boards
    from exporter.generation.dashboards.rendering import render_board
    from exporter.generation.grafana import GrafanaClient, GrafanaError, push

    spec = load_or_exit(configs).spec
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.ClickException(f"cannot read {token_file}: {exc.strerror}") from None
    else:
        token = os.environ.get("GRAFANA_TOKEN", "").strip()
    if not token:
        raise click.ClickException("no token: set GRAFANA_TOKEN or pass --token-file")
    client = GrafanaClient(grafana_url, token, timeout)
    try:
        pushed = push(client, [render_board(b) for b in boards(spec)], folder, "kpi-exporter")
    except GrafanaError as exc:
        raise click.ClickException(str(exc)) from None
    for item in pushed:
        click.echo(f"pushed {item.uid} ({item.title}) version {item.version} {item.url}")
