"""The `kpi-exporter` command line: run, once, check, report, backfill, schema, state, generate,
dashboards; the one place that wires the layers together."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from exporter import __version__, log
from exporter.collection.state import StateError, StateStore
from exporter.runtime.daemon import Daemon
from exporter.sources.base import QueryError
from exporter.spec.loading import LoadedSpec, SpecError, load_spec
from exporter.spec.model import Spec

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


def _listen(listen: str | None, port: int | None, spec: Spec) -> tuple[str, int]:
    """Bind address: --listen, else --port / METRICS_PORT, else the spec's listen or port."""
    text = listen or (None if port is not None else os.environ.get("KPI_LISTEN"))
    if port is None and os.environ.get("METRICS_PORT"):
        try:
            port = int(os.environ["METRICS_PORT"])
        except ValueError:
            raise click.BadParameter("METRICS_PORT is not a number") from None
    text = text or (None if port is not None else spec.exporter.listen)
    if text:
        host, _, port_text = text.rpartition(":")
        try:
            # all interfaces by default: Prometheus scrapes from another host; --listen narrows
            return host.strip("[]") or "0.0.0.0", int(port_text)  # nosec B104
        except ValueError:
            raise click.BadParameter(f"--listen {text!r} is not HOST:PORT") from None
    return "0.0.0.0", port if port is not None else spec.exporter.port  # nosec B104


def _daemon_or_exit(
    loaded: LoadedSpec, configs: Sequence[Path], narrow: Callable[[Spec], Spec] | None = None
) -> Daemon:
    try:
        return Daemon(loaded, configs, narrow)
    except StateError as exc:
        click.echo(f"state: {exc}", err=True)
        sys.exit(EXIT_SPEC)
    except QueryError as exc:
        click.echo(exc.message, err=True)  # names the database
        sys.exit(EXIT_SPEC)


def _simulate(spec: Spec) -> Any:
    """Start the demo simulator on the spec's first SQLite database (demo only)."""
    from exporter.demo import Simulator
    from exporter.sources.base import resolve_dsn
    from exporter.sources.registry import scheme_of
    from exporter.sources.sqlite import file_path

    for database in spec.databases.values():
        dsn = resolve_dsn(database)
        if scheme_of(dsn) == "sqlite":
            simulator = Simulator(file_path(dsn))
            simulator.start()
            return simulator
    raise click.UsageError("--simulate needs a sqlite:/// database in the spec")


class Site:
    """What the HTTP layer serves (serving.http.Endpoints): the daemon's metrics and
    readiness, the reload with its systemd notifications, the status page and the generated
    rules and dashboards, which the daemon itself never imports."""

    def __init__(self, daemon: Daemon, reload: Callable[[], tuple[bool, list[str]]]) -> None:
        self.daemon = daemon
        self.reload = reload
        self.ready = daemon.ready
        self.metrics_body = daemon.metrics_body
        self._generated: tuple[LoadedSpec, dict[str, str]] | None = None

    def generated_files(self) -> dict[str, str]:
        """The rules and dashboards the running spec generates, by path (built once per spec)."""
        from exporter.generation import rule_files
        from exporter.generation.dashboards import files as dashboard_files

        loaded = self.daemon.loaded
        if self._generated is None or self._generated[0] is not loaded:
            files = {
                f"rules/{name}": text
                for name, text in rule_files.render_files(loaded.spec).items()
                if not name.startswith("tests/")
            }
            files.update(
                (f"dashboards/{name}", text)
                for name, text in dashboard_files.render(loaded.spec).items()
                if name.endswith(".json")
            )
            self._generated = (loaded, files)
        return self._generated[1]

    def status_page(self) -> bytes:
        from exporter.conventions import format_duration
        from exporter.serving import statuspage

        rows = []
        for name, poll in sorted(self.daemon.polls.items()):
            recent = poll.status.recent.points()
            rows.append(
                statuspage.KpiRow(
                    name=name,
                    type=poll.kpi.type + (" (cursor)" if poll.kpi.cursor else ""),
                    database=poll.database,
                    schedule=poll.kpi.schedule or f"every {format_duration(poll.kpi.period)}",
                    state=poll.status.state,
                    last_run=poll.status.last_run,
                    duration=poll.status.last_duration,
                    series=poll.status.series,
                    next_run=self.daemon.schedule.next_run(name),
                    error=poll.status.last_error,
                    values=[(p.at, p.total) for p in recent if p.total is not None],
                    durations=[(p.at, p.duration) for p in recent],
                    target=poll.kpi.target.value if poll.kpi.target else None,
                )
            )
        links = [("metrics", "/metrics"), ("ready", "/ready"), ("health", "/health")]
        links += [(name, f"/generated/{name}") for name in sorted(self.generated_files())]
        return statuspage.render(rows, links)


@main.command()
@config_option
@click.option("--listen", help="HOST:PORT to bind (default: all interfaces, spec port).")
@click.option("--port", type=int, help="Port to bind; also the METRICS_PORT variable.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info"
)
@click.option(
    "--simulate", is_flag=True, help="Demo: create the SQLite demo data and keep adding rows."
)
@click.option("--grace", type=float, default=10.0, help="Seconds polls may finish at shutdown.")
@click.option(
    "--web.config.file",
    "web_config",
    type=click.Path(path_type=Path),
    help="TLS, basic auth and headers, in Prometheus exporter-toolkit's web config format.",
)
@click.option("--health-no-auth", is_flag=True, help="Serve /health without basic auth.")
@click.option(
    "--web.enable-lifecycle",
    "lifecycle",
    is_flag=True,
    help="Answer POST /-/reload (403 otherwise; SIGHUP always reloads).",
)
@click.option("--shard", "shard_text", help="I/N: run only the KPIs of shard I of N (0-based).")
def run(
    configs: tuple[Path, ...],
    listen: str | None,
    port: int | None,
    log_format: str,
    log_level: str,
    simulate: bool,
    grace: float,
    web_config: Path | None,
    health_no_auth: bool,
    lifecycle: bool,
    shard_text: str | None,
) -> None:
    """Run the exporter daemon."""
    from exporter.runtime.notify import SystemdNotifier
    from exporter.runtime.sharding import Shard, declare
    from exporter.serving.http import HttpApp, MetricsServer
    from exporter.serving.webconfig import WebConfigError, WebSecurity

    log.configure(log_format, log_level)
    try:
        shard = Shard.parse(shard_text) if shard_text else Shard()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from None
    try:
        security = WebSecurity(web_config) if web_config is not None else None
    except WebConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_SPEC)
    loaded = load_or_exit(configs)
    host, bind_port = _listen(listen, port, loaded.spec)
    simulator = _simulate(loaded.spec) if simulate else None
    daemon = _daemon_or_exit(loaded, configs, shard.narrow)
    declare(shard, daemon.metrics.registry)
    notifier = SystemdNotifier()

    def status() -> str:
        return f"{len(daemon.polls)} KPIs (shard {shard}) on {host}:{bind_port}"

    def reload() -> tuple[bool, list[str]]:
        notifier.reloading()
        try:
            return daemon.reload()
        finally:
            daemon.metrics.invalidate()
            notifier.ready(status())

    app = HttpApp(Site(daemon, reload), security, health_no_auth, lifecycle)
    try:
        server = MetricsServer(host, bind_port, app)
    except OSError as exc:
        click.echo(f"cannot listen on {host}:{bind_port}: {exc.strerror}", err=True)
        sys.exit(1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=reload).start())
    server.start()
    daemon.start()
    log.event(logging.INFO, "listening", address=f"{host}:{bind_port}", tls=server.tls)
    notifier.ready(status())
    notifier.start_watchdog(lambda: server.alive() and daemon.schedule.scheduler.running)
    # A timed wait: a signal delivered to another thread only runs its Python handler once
    # the main thread wakes, and an untimed wait may never wake.
    while not stop.wait(timeout=0.5):
        pass
    log.event(logging.INFO, "stopping", grace=grace)
    notifier.stopping()
    server.stop()
    daemon.stop(grace)
    notifier.close()
    if simulator is not None:
        simulator.stop()


@main.command()
@config_option
@click.option("--kpi", "only", help="Poll only this KPI.")
@click.option("--openmetrics", is_flag=True, help="Print OpenMetrics instead of text format.")
def once(configs: tuple[Path, ...], only: str | None, openmetrics: bool) -> None:
    """Poll every KPI once and print the exposition; exit 1 if any KPI failed."""
    log.configure("text", "warning")
    loaded = load_or_exit(configs)
    if only is not None and only not in {k.name for k in loaded.spec.kpis}:
        raise click.BadParameter(f"no KPI named {only!r}", param_hint="--kpi")
    daemon = _daemon_or_exit(loaded, configs)
    try:
        ok = daemon.poll_all_once(only)
        sys.stdout.buffer.write(daemon.publication.body(openmetrics, gzip=False))
    finally:
        daemon.stop(grace=0)
    sys.exit(0 if ok else 1)


def _exit_on(problems: list[str], where: str) -> None:
    """Print each problem and a count, then exit 2; nothing when there are none."""
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) {where}", err=True)
        sys.exit(EXIT_SPEC)


def _backend_problems(loaded: LoadedSpec) -> list[str]:
    """Each database whose DSN names no usable backend (unknown scheme, extra not installed)."""
    from exporter.sources.base import resolve_dsn
    from exporter.sources.registry import BackendError, backend_for

    problems = []
    for name, database in loaded.spec.databases.items():
        key = "dsn" if database.dsn is not None else "dsn_file"
        try:
            backend_for(resolve_dsn(database))
        except BackendError as exc:
            problems.append(str(loaded.locate(("databases", name, key), exc.message)))
        except QueryError:
            pass  # an unreadable dsn_file may exist only where the exporter runs: --connect says
    return problems


@main.command()
@config_option
@click.option("--connect", is_flag=True, help="Also run each query once and compare columns.")
def check(configs: tuple[Path, ...], connect: bool) -> None:
    """Validate the spec: exit 0, or print each problem as file:line: field: reason and exit 2."""
    loaded = load_or_exit(configs)
    spec = loaded.spec
    _exit_on(_backend_problems(loaded), "in the spec")
    if not connect:
        click.echo(f"ok: {len(spec.kpis)} KPIs, {len(spec.databases)} databases")
        return
    from exporter.collection.probe import probe_spec

    _exit_on(probe_spec(spec), "found running the queries")
    click.echo(f"ok: {len(spec.kpis)} KPIs ran and returned the columns the spec names")


@main.command()
@config_option
@click.option("--prometheus", "url", required=True, help="Prometheus base URL (http://host:9090).")
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
@click.option("--timeout", "timeout_text", default="10s", show_default=True, help="Per query.")
@click.option("--ca-file", type=click.Path(exists=True), help="CA bundle for an https Prometheus.")
def report(
    configs: tuple[Path, ...],
    url: str,
    range_text: str,
    fmt: str,
    timeout_text: str,
    ca_file: str | None,
) -> None:
    """Each KPI's value now and one range ago, its trend and target status, from Prometheus."""
    import time

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


@main.command()
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
        f"backfilled {len(summary.replayed)} KPIs: {summary.samples} samples at {summary.steps}"
        f" steps from {format_instant(since)} to {format_instant(until)}, {summary.rows} rows"
        f" read; {where}"
    )


@main.command()
@config_option
@click.option("--prometheus", "url", required=True, help="Prometheus base URL (http://host:9090).")
@click.option("--windows", type=click.IntRange(1, 10_000), default=24, show_default=True)
@click.option("--window", "window_text", default="1h", show_default=True, help="Window length.")
@click.option(
    "--tolerance", type=float, default=0.0, show_default=True, help="Drift allowed per cell."
)
@click.option("--kpi", "only", multiple=True, help="Only this KPI; repeat for several.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--timeout", "timeout_text", default="30s", show_default=True, help="Per query.")
@click.option("--ca-file", type=click.Path(exists=True), help="CA bundle for an https Prometheus.")
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


@main.group()
def state() -> None:
    """Inspect or reset cursor state (the exporter must not be running for reset)."""


def _store_or_exit(configs: Sequence[Path]) -> StateStore:
    """The spec's state file, or a clear message and exit 2."""
    loaded = load_or_exit(configs)
    try:
        return StateStore(loaded.spec.exporter.state_dir)
    except StateError as exc:
        click.echo(f"state: {exc}", err=True)
        sys.exit(EXIT_SPEC)


@state.command("show")
@config_option
def state_show(configs: tuple[Path, ...]) -> None:
    """Print each cursor KPI's stored cursor, rows processed and series count as JSON."""
    store = _store_or_exit(configs)
    click.echo(json.dumps(store.summary(), indent=2, default=str))
    store.close()


@state.command("reset")
@config_option
@click.argument("kpi")
def state_reset(configs: tuple[Path, ...], kpi: str) -> None:
    """Forget one KPI's cursor and totals; it starts again per its `start:` setting."""
    store = _store_or_exit(configs)
    found = store.reset(kpi)
    store.close()
    click.echo(f"reset {kpi}" if found else f"no state for {kpi}")


@main.group()
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


@main.group()
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


if __name__ == "__main__":
    main()
