"""`run` and `once`: the daemon, its HTTP site (status page, generated files) and signals."""

from __future__ import annotations

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

from exporter import log
from exporter.cli.common import EXIT_SPEC, config_option, load_or_exit
from exporter.collection.state import StateError
from exporter.runtime.daemon import Daemon
from exporter.sources.base import QueryError
from exporter.spec.loading import LoadedSpec
from exporter.spec.model import Spec


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


def _simulate(spec: Spec, history_days: float, history_scale: float) -> Any:
    """Start the demo simulator on the spec's first SQLite database (demo only), first giving
    a new database `history_days` of past events."""
    from exporter.demo import Simulator
    from exporter.demo_history import seed_file
    from exporter.sources.base import resolve_dsn
    from exporter.sources.registry import scheme_of
    from exporter.sources.sqlite import file_path

    for database in spec.databases.values():
        dsn = resolve_dsn(database)
        if scheme_of(dsn) == "sqlite":
            path = file_path(dsn)
            if history_days > 0:
                started = time.monotonic()
                progress = _history_progress if sys.stderr.isatty() else None
                if seed_file(path, history_days, history_scale, progress):
                    click.echo(
                        f"demo: {history_days:g} days of history written to {path} in"
                        f" {time.monotonic() - started:.0f}s",
                        err=True,
                    )
                else:
                    click.echo(f"demo: {path} already has data; --history-days left it", err=True)
            simulator = Simulator(path)
            simulator.start()
            return simulator
    raise click.UsageError("--simulate needs a sqlite:/// database in the spec")


def _history_progress(done: float, total: float) -> None:
    click.echo(f"\r  history {100 * done / total:.1f}%   ", nl=done >= total, err=True)


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


@click.command()
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
@click.option(
    "--history-days",
    type=click.FloatRange(min=0),
    default=0,
    help="Demo: give a new demo database this many days of past events (about 1.6M rows a day).",
)
@click.option(
    "--history-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Demo: the history's traffic as a share of the simulator's rates.",
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
    history_days: float,
    history_scale: float,
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
    if history_days and not simulate:
        raise click.UsageError("--history-days needs --simulate")
    simulator = _simulate(loaded.spec, history_days, history_scale) if simulate else None
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


@click.command()
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
