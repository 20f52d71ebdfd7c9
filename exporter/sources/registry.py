"""Which backend serves a DSN: its scheme names a Source class, imported only when used.

A new engine is one module plus one line in BUILTIN. Third-party packages register theirs
under the entry-point group `kpi_exporter.sources` (name: the scheme, value: `module:Class`).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from exporter.sources.base import Backend, QueryError, Source, resolve_dsn
from exporter.sources.rotation import DsnFileSource
from exporter.spec.model import Database

ENTRY_POINT_GROUP = "kpi_exporter.sources"
PACKAGE = "kpi-exporter"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_DECLARED = ("guarantees", "paramstyle", "demo")


@dataclass(frozen=True)
class BackendEntry:
    """One registry line: the DSN schemes a Source class serves, and where it lives.

    `target` is "module:Class", imported on first use; `install` is what to pip-install when
    that import misses a module (an optional extra of ours, or a third-party distribution).
    """

    schemes: tuple[str, ...]
    target: str
    install: str | None = None


# not `extra`: bandit reads any extra(...) call as Django's QuerySet.extra (B610)
def optional_extra(name: str) -> str:
    """The `install` of a backend shipped as our optional extra `name`."""
    return f"{PACKAGE}[{name}]"


BUILTIN: tuple[BackendEntry, ...] = (
    BackendEntry(("postgresql", "postgres"), "exporter.sources.postgres:PostgresSource"),
    BackendEntry(("sqlite",), "exporter.sources.sqlite:SqliteSource"),
    BackendEntry(("duckdb",), "exporter.sources.duckdb:DuckdbSource", optional_extra("duckdb")),
    BackendEntry(
        ("mysql", "mariadb"), "exporter.sources.mysql:MysqlSource", optional_extra("mysql")
    ),
    BackendEntry(
        ("sqlalchemy",),
        "exporter.sources.sqlalchemy:SqlalchemySource",
        optional_extra("sqlalchemy"),
    ),
)


class BackendError(QueryError):
    """No usable backend for a DSN: an unknown scheme, or a driver that is not installed."""

    def __init__(self, message: str) -> None:
        super().__init__("connection", message)


def scheme_of(dsn: str) -> str:
    """The DSN's scheme, lower case; libpq's `key=value` form counts as postgresql."""
    match = _SCHEME.match(dsn)
    if match:
        return match.group(1).lower()
    if "=" in dsn:
        return "postgresql"
    raise BackendError("the DSN has no scheme (e.g. postgresql://… or sqlite:///file.db)")


def _plugins() -> dict[str, BackendEntry]:
    """Backends other packages register, by scheme (read at each lookup: only on open/check)."""
    found: dict[str, BackendEntry] = {}
    point: EntryPoint
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist.name if point.dist is not None else None
        install = f"{dist}[{','.join(point.extras)}]" if dist and point.extras else dist
        found[point.name.lower()] = BackendEntry((point.name.lower(),), point.value, install)
    return found


_BUILTIN = {scheme: entry for entry in BUILTIN for scheme in entry.schemes}


def entries() -> dict[str, BackendEntry]:
    """Every known scheme and its entry; built-ins win over a plugin claiming the same scheme."""
    return {**_plugins(), **_BUILTIN}


def entry_for(scheme: str) -> BackendEntry:
    """The entry of a scheme: exact, else its part before '+' (sqlalchemy+mssql → sqlalchemy)."""
    candidates = (scheme, scheme.split("+", 1)[0])
    for known in (_BUILTIN, entries()):  # plugins are looked up only for other schemes
        for candidate in candidates:
            if candidate in known:
                return known[candidate]
    raise BackendError(
        f"unknown DSN scheme {scheme!r} (known: {', '.join(f'{s}://' for s in sorted(known))})"
    )


def load(entry: BackendEntry) -> type[Backend]:
    """Import an entry's Source class; a missing driver becomes one line naming the install."""
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name == module_name or entry.install is None:
            raise BackendError(f"cannot import backend {entry.target}: {exc}") from None
        raise BackendError(
            f"the {entry.schemes[0]}:// backend needs the {exc.name} module: "
            f"pip install '{entry.install}'"
        ) from None
    found = getattr(module, class_name, None)
    missing = [name for name in _DECLARED if not hasattr(found, name)]
    if found is None or missing:
        raise BackendError(
            f"backend {entry.target} is not a Source class declaring {', '.join(_DECLARED)}"
        )
    return cast(type[Backend], found)


def backend_for(dsn: str) -> type[Backend]:
    """The Source class serving a DSN (imported now); BackendError says why there is none."""
    return load(entry_for(scheme_of(dsn)))


def open_source(name: str, database: Database, pool_timeout: float) -> Source:
    """The Source for a spec database; connections are made lazily, never here.

    A `dsn_file` database gets a DsnFileSource, which follows the file when its DSN changes.
    Raises QueryError (reason connection) naming the database when its DSN file cannot be
    read or no backend serves its DSN.
    """

    def open_dsn(dsn: str) -> Source:
        try:
            backend = backend_for(dsn)
        except QueryError as exc:
            raise QueryError(exc.reason, f"database {name}: {exc.message}") from None
        return backend(name, dsn, database, pool_timeout)

    try:
        dsn = resolve_dsn(database)
    except QueryError as exc:
        raise QueryError(exc.reason, f"database {name}: {exc.message}") from None
    if database.dsn_file is not None:
        return DsnFileSource(name, database, dsn, open_dsn)
    return open_dsn(dsn)
