"""Backends through the registry in a running Daemon: a plugin from an entry point, and an
unknown scheme refused with the database named."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from exporter.runtime.daemon import Daemon
from exporter.sources import registry
from exporter.sources.base import QueryError
from exporter.spec.loading import load_spec

SPEC = """\
databases:
  good: {{dsn: "sqlite:///{db}"}}
  other: {{dsn: "{dsn}"}}
kpis:
  - {{name: answer, type: gauge, database: good, interval: 1m, query: "SELECT 6 * 7 AS value"}}
"""


def test_run_names_the_database_of_an_unknown_scheme(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(db=db, dsn="nosuch://h"))
    with pytest.raises(QueryError, match=r"^database other: unknown DSN scheme 'nosuch'"):
        Daemon(load_spec([spec]))


PLUGIN = '''\
"""A third-party backend: SQL run on a private in-memory SQLite."""
import sqlite3

from exporter.sources.base import DemoDialect, Guarantees, Rows, RunningQueries
from exporter.spec.params import to_paramstyle


class MemSource:
    guarantees = Guarantees(
        server_timeout=False, cancel=True, read_only=False, bound_parameters=True
    )
    paramstyle = "dollar"
    demo = None

    def __init__(self, name, dsn, database, pool_timeout):
        self.name = name
        self.dsn = dsn
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._running = RunningQueries(sqlite3.Connection.interrupt)

    def query(self, sql, params, timeout):
        with self._running.track(self._conn):
            cursor = self._conn.execute(to_paramstyle(sql, self.paramstyle), dict(params))
            return Rows(tuple(d[0] for d in cursor.description), cursor.fetchall())

    def cancel_running(self):
        return self._running.cancel_all()

    def close(self):
        self._conn.close()
'''


def test_an_entry_point_backend_is_polled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution on sys.path registers `memdb` in kpi_exporter.sources; a KPI polls it."""
    (tmp_path / "kpi_test_memdb.py").write_text(PLUGIN)
    info = tmp_path / "kpi_test_memdb-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kpi-test-memdb\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[kpi_exporter.sources]\nmemdb = kpi_test_memdb:MemSource\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.entries()["memdb"].install == "kpi-test-memdb"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "databases:\n  mem: {dsn: 'memdb://anything'}\n"
        "kpis:\n  - {name: plugin_answer, type: gauge, database: mem, interval: 1m,\n"
        "     params: {factor: 7}, query: 'SELECT 6 * :factor AS value'}\n"
    )
    daemon = Daemon(load_spec([spec]))
    try:
        assert daemon.poll_all_once()
        body = daemon.publication.body(False, gzip=False).decode()
    finally:
        daemon.stop(grace=0)
    assert re.search(r"^plugin_answer 42\.0$", body, re.MULTILINE), body
    # the plugin's scheme is listed among the known ones
    with pytest.raises(registry.BackendError, match="memdb://"):
        registry.backend_for("nosuch://x")
