"""Daemon reloads in-process: what a new spec changes, the polls follow."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collection.polls import KpiPoll
from exporter.runtime.daemon import Daemon
from exporter.serving import selfmetrics
from exporter.sources.base import Rows, Source
from exporter.spec.loading import load_spec

SPEC = """\
exporter: {{labels: {{service: {service}}}, namespace: "{namespace}"}}
databases:
  app: {{dsn: "sqlite:///{db}"}}
kpis:
  - {{name: orders, type: gauge, database: app, interval: 1m, query: SELECT 3 AS value}}
"""


def started(tmp_path: Path) -> tuple[Daemon, Path, Path]:
    """A daemon on SPEC over a new SQLite file: (daemon, spec file, database file)."""
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(service="a", namespace="", db=db))
    return Daemon(load_spec([spec]), [spec]), spec, db


class TestReload:
    def test_exporter_labels_and_namespace_changes_reach_the_series(self, tmp_path: Path) -> None:
        daemon, spec, db = started(tmp_path)
        try:
            assert daemon.poll_all_once()
            assert b'orders{service="a"} 3.0' in daemon.publication.body(False, False)
            spec.write_text(SPEC.format(service="b", namespace="shop", db=db))
            assert daemon.reload() == (True, [])
            body = daemon.publication.body(False, False)
            assert b"orders{" not in body  # the old series are withdrawn at once
            assert daemon.poll_all_once()
            assert b'shop_orders{service="b"} 3.0' in daemon.publication.body(False, False)
        finally:
            daemon.stop(grace=0)


MOVING = """\
databases:
{databases}
kpis:
  - {{name: moving, type: gauge, database: {database}, interval: 1m, query: SELECT 1 AS value}}
{more}
"""
REMOVED = "  - {name: removed, type: gauge, database: old, interval: 1m, query: SELECT 2 AS value}"


def scraped_own_samples(daemon: Daemon) -> list[tuple[str, dict[str, str]]]:
    """The exporter's own samples (name, labels) in a /metrics scrape (text format)."""
    body = daemon.metrics_body(openmetrics=False, gzip=False).decode()
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(body)
        if family.name.startswith("kpi_exporter_")
        for sample in family.samples
    ]


def kpi_series(body: bytes) -> list[bytes]:
    """The body's KPI lines: the exporter's own and the process' change with every render."""
    names = (b"kpi_exporter_", b"process_", b"python_")
    own = names + tuple(b"# HELP " + n for n in names) + tuple(b"# TYPE " + n for n in names)
    return [line for line in body.splitlines() if not line.startswith(own)]


class TestReloadSelfMetrics:
    def test_a_moved_or_removed_kpi_and_a_removed_database_leave_no_series(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # renders are reused for an hour here: the reload itself must drop the one it outdates
        monkeypatch.setattr(selfmetrics, "RENDER_REUSE", 3600.0)
        dsns = {}
        for name in ("old", "new"):
            sqlite3.connect(tmp_path / f"{name}.db").close()
            dsns[name] = f'  {name}: {{dsn: "sqlite:///{tmp_path / name}.db"}}'
        spec = tmp_path / "spec.yaml"
        both = "\n".join(dsns.values())
        spec.write_text(MOVING.format(databases=both, database="old", more=REMOVED))
        daemon = Daemon(load_spec([spec]), [spec])
        try:
            assert daemon.poll_all_once()
            before = scraped_own_samples(daemon)
            assert any(labels.get("kpi") == "removed" for _, labels in before)
            assert any(
                labels == {"kpi": "moving", "database": "old", "reason": "sql"}
                for _, labels in before
            )
            assert ("kpi_exporter_database_up", {"database": "old"}) in before

            spec.write_text(MOVING.format(databases=dsns["new"], database="new", more=""))
            assert daemon.reload() == (True, [])
            assert daemon.poll_all_once()
            after = scraped_own_samples(daemon)
            assert [s for s in after if s[1].get("database") == "old"] == []
            assert [s for s in after if s[1].get("kpi") == "removed"] == []
            moving = {name for name, labels in after if labels.get("kpi") == "moving"}
            assert {"kpi_exporter_kpi_up", "kpi_exporter_query_errors_total"} <= moving
            assert any(
                labels == {"kpi": "moving", "database": "new", "reason": "sql"}
                for _, labels in after
            )
            assert ("kpi_exporter_database_up", {"database": "new"}) in after
        finally:
            daemon.stop(grace=0)


TWO_DATABASES = """\
exporter: {{labels: {{service: shop}}}}
databases:
  app: {{dsn: "sqlite:///{app}"}}
  side: {side}
kpis:
  - {{name: orders, type: gauge, database: app, interval: 1m, query: SELECT 3 AS value}}
  - {{name: moving, type: gauge, database: side, interval: 1m, query: SELECT {moving} AS value}}
"""


def own_series(daemon: Daemon) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The exporter's own series (name and labels), but the reload outcome's."""
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in daemon.metrics.registry.collect()
        for sample in family.samples
        if sample.name.startswith("kpi_exporter_") and "reload" not in sample.name
    }


class TestRefusedReload:
    def test_a_source_that_fails_to_open_changes_nothing(self, tmp_path: Path) -> None:
        app, side = tmp_path / "app.db", tmp_path / "side.db"
        for db in (app, side):
            sqlite3.connect(db).close()
        dsn_file = tmp_path / "side.dsn"  # does not exist yet
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            TWO_DATABASES.format(app=app, side=f'{{dsn: "sqlite:///{side}"}}', moving=1)
        )
        daemon = Daemon(load_spec([spec]), [spec])
        try:
            assert daemon.poll_all_once()
            polls, sources = dict(daemon.polls), dict(daemon.sources)
            jobs = {job.id: job.trigger for job in daemon.schedule.scheduler.get_jobs()}
            body = daemon.publication.body(False, False)
            series = own_series(daemon)
            assert b'moving{service="shop"} 1.0' in body

            # `side` now reads its DSN from a file that is missing, and `moving` changes
            spec.write_text(
                TWO_DATABASES.format(app=app, side=f"{{dsn_file: {dsn_file}}}", moving=2)
            )
            ok, errors = daemon.reload()
            assert not ok and "cannot read dsn_file" in errors[0]
            assert daemon.polls == polls
            assert all(daemon.polls[name] is poll for name, poll in polls.items())
            assert daemon.sources == sources
            assert {job.id: job.trigger for job in daemon.schedule.scheduler.get_jobs()} == jobs
            after = daemon.publication.body(False, False)
            assert kpi_series(after) == kpi_series(body)
            assert b"kpi_exporter_config_last_reload_successful 0.0" in after  # at once
            assert own_series(daemon) == series
            assert daemon.poll_all_once()  # the running spec still polls both KPIs
            assert b'moving{service="shop"} 1.0' in daemon.publication.body(False, False)

            # with the file in place the same spec loads; the unchanged KPI keeps its poll
            dsn_file.write_text(f"sqlite:///{side}\n")
            assert daemon.reload() == (True, [])
            assert daemon.polls["orders"] is polls["orders"]
            assert daemon.polls["moving"] is not polls["moving"]
            assert daemon.sources["app"] is sources["app"]
            assert b'orders{service="shop"} 3.0' in daemon.publication.body(False, False)
            assert daemon.poll_all_once()
            assert b'moving{service="shop"} 2.0' in daemon.publication.body(False, False)
        finally:
            daemon.stop(grace=0)

    def test_an_unusable_state_dir_refuses_the_reload(self, tmp_path: Path) -> None:
        daemon, spec, app = started(tmp_path)
        try:
            assert daemon.poll_all_once()
            polls, body = dict(daemon.polls), daemon.publication.body(False, False)
            blocker = tmp_path / "not-a-dir"
            blocker.write_text("")  # state_dir below a file: it cannot be created
            cursor_kpi = (
                "  - {name: rows_total, type: counter, database: app, interval: 1m, cursor: id,"
                " query: 'SELECT 1 AS id WHERE 1 > :cursor LIMIT :batch'}\n"
            )
            spec.write_text(
                SPEC.format(service="a", namespace="", db=app).replace(
                    "exporter: {", f"exporter: {{state_dir: {blocker / 'state'}, "
                )
                + cursor_kpi
            )
            ok, errors = daemon.reload()
            assert not ok and "cannot create state_dir" in errors[0]
            assert daemon.polls == polls and daemon.store is None
            after = daemon.publication.body(False, False)
            assert kpi_series(after) == kpi_series(body)
            assert b"kpi_exporter_config_last_reload_successful 0.0" in after  # at once
        finally:
            daemon.stop(grace=0)


class Held:
    """A source whose next query waits until released: a poll in flight across a reload."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.entered = threading.Event()
        self.release = threading.Event()

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        self.entered.set()
        assert self.release.wait(30), "the test never released the query"
        return self.source.query(sql, params, timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def run_held(poll: KpiPoll) -> Callable[[], None]:
    """Start a forced run of `poll` and wait until its query is held; returns the release,
    which lets the query answer and waits for the run to end."""
    held = Held(poll.source)
    poll.source = held
    running = threading.Thread(target=poll.run, kwargs={"force": True})
    running.start()
    assert held.entered.wait(30)

    def release() -> None:
        held.release.set()
        running.join(30)
        assert not running.is_alive()

    return release


class TestPollInFlight:
    def test_a_removed_kpi_stays_withdrawn_when_its_running_poll_ends(self, tmp_path: Path) -> None:
        daemon, spec, db = started(tmp_path)
        try:
            assert daemon.poll_all_once()
            poll = daemon.polls["orders"]
            release = run_held(poll)
            spec.write_text(
                SPEC.format(service="a", namespace="", db=db).replace("orders", "sales")
            )
            assert daemon.reload() == (True, [])
            release()
            assert b"orders" not in daemon.publication.body(False, False)
            assert not [s for s in own_series(daemon) if ("kpi", "orders") in s[1]]
            assert daemon.poll_all_once()
            assert b'sales{service="a"} 3.0' in daemon.publication.body(False, False)
        finally:
            daemon.stop(grace=0)

    def test_a_replaced_cursor_poll_in_flight_writes_no_state(self, tmp_path: Path) -> None:
        db = tmp_path / "app.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT)")
            conn.executemany("INSERT INTO events (kind) VALUES (?)", [("a",), ("b",)])
        conn.close()
        spec = tmp_path / "spec.yaml"
        cursor_spec = (
            f"exporter: {{state_dir: {tmp_path / 'state'}}}\n"
            f'databases: {{app: {{dsn: "sqlite:///{db}"}}}}\n'
            "kpis:\n"
            "  - {name: events_total, type: counter, database: app, interval: 1m, cursor: id,\n"
            "     start: earliest, labels: [kind], query: 'SELECT id, kind FROM events\n"
            "     WHERE id > :cursor{only} ORDER BY id LIMIT :batch'}\n"
        )
        spec.write_text(cursor_spec.replace("{only}", ""))
        daemon = Daemon(load_spec([spec]), [spec])
        try:
            poll = daemon.polls["events_total"]
            release = run_held(poll)
            # the query changes what it counts: the new poll resets the stored state
            spec.write_text(cursor_spec.replace("{only}", " AND kind = ''a''"))
            assert daemon.reload() == (True, [])
            release()
            assert daemon.poll_all_once()
        finally:
            daemon.stop(grace=0)
        # a restart publishes what the new query counted, and nothing the old poll read
        restarted = Daemon(load_spec([spec]), [spec])
        try:
            body = restarted.publication.body(False, False)
            assert b'events_total{kind="a"} 1.0' in body
            assert b'kind="b"' not in body
        finally:
            restarted.stop(grace=0)
