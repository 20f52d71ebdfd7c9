"""`check`, `schema` and `state`: validate the spec, probe the databases, cursor state."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from exporter.cli.common import EXIT_SPEC, config_option, exit_on, load_or_exit
from exporter.collection.state import StateError, StateStore, split_key
from exporter.sources.base import QueryError
from exporter.spec.loading import LoadedSpec
from exporter.spec.model import Spec


@click.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editors)."""
    click.echo(json.dumps(Spec.model_json_schema(by_alias=True), indent=2, sort_keys=True))


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


@click.command()
@config_option
@click.option("--connect", is_flag=True, help="Also run each query once and compare columns.")
def check(configs: tuple[Path, ...], connect: bool) -> None:
    """Validate the spec: exit 0, or print each problem as file:line: field: reason and exit 2."""
    loaded = load_or_exit(configs)
    spec = loaded.spec
    exit_on(_backend_problems(loaded), "in the spec")
    if not connect:
        click.echo(f"ok: {len(spec.kpis)} KPIs, {len(spec.databases)} databases")
        return
    from exporter.collection.probe import probe_spec

    exit_on(probe_spec(spec), "found running the queries")
    click.echo(f"ok: {len(spec.kpis)} KPIs ran and returned the columns the spec names")


@click.group()
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
    """Forget one KPI's cursor and totals (on every database it spans, or one: KPI@DATABASE);
    it starts again per its `start:` setting."""
    store = _store_or_exit(configs)
    keys = [key for key in store.names() if kpi in (key, split_key(key)[0])]
    found = any([store.reset(key) for key in keys])
    store.close()
    click.echo(f"reset {kpi}" if found else f"no state for {kpi}")
