"""One KPI across two PostgreSQL databases (two schemas): each database's series equal its own
SQL, one unreachable database fails only its part, cursor counters stay exactly-once per
database across restarts, and a reload that drops a database leaves none of its series."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import free_port
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families
from support.many_databases import events_kpi

from exporter.collection.state import StateStore, state_key
from exporter.runtime.daemon import Daemon
from exporter.spec.loading import load_spec

SPEC = """\
exporter: {{state_dir: "{state}", labels: {{service: shop}}, database_label: "{label}"}}
databases:
  eu: {{dsn: "{eu}", labels: {{region: europe}}}}
  us: {{dsn: "{us}", labels: {{region: america}}}}
kpis:
  - name: open_orders
    type: gauge
    database: {open_orders}
    interval: 1m
    labels: [status]
    query: SELECT status, count(*) AS value FROM orders GROUP BY status
""" + events_kpi("id, kind, amount", "value: amount", "start: earliest", "batch: 3")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def two_schemas(postgres_dsn: str) -> Iterator[dict[str, tuple[str, str]]]:
    """Two fresh schemas, eu and us: {name: (dsn with its search_path, schema)}."""
    made: dict[str, tuple[str, str]] = {}
    sep = "&" if "?" in postgres_dsn else "?"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for name in ("eu", "us"):
            schema = f"t_{uuid.uuid4().hex[:12]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".orders (id serial, status text)')
            conn.execute(
                f'CREATE TABLE "{schema}".events (id int PRIMARY KEY, kind text, amount int)'
            )
            made[name] = (f"{postgres_dsn}{sep}options=-csearch_path%3D{schema}", schema)
    try:
        yield made
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for _, schema in made.values():
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_sql(dsn: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def add_events(dsn: str, first: int, kinds: list[str]) -> None:
    for offset, kind in enumerate(kinds):
        run_sql(dsn, "INSERT INTO events VALUES (%s, %s, %s)", (first + offset, kind, offset + 1))


def samples(daemon: Daemon) -> Samples:
    """Every sample of /metrics by (name, sorted labels); the OpenMetrics form must parse too
    (a family's HELP and TYPE lines come once, however many databases publish it)."""
    om = daemon.publication.body(True, False).decode()
    assert len(list(om_families(om))) > 0
    text = daemon.publication.body(False, False).decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, key
            found[key] = sample.value
    return found


def series(found: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of `name` whose labels include `labels`, by their other labels."""
    return {
        tuple(kv for kv in key if kv[0] not in labels): value
        for (sample, key), value in found.items()
        if sample == name and set(labels.items()) <= set(key)
    }


def expected_events(dsn: str, region: str, database: str, label: str) -> dict:
    rows = run_sql(dsn, "SELECT kind, sum(amount) FROM events GROUP BY kind")
    return {
        ((label, database), ("kind", kind), ("region", region), ("service", "shop")): float(total)
        for kind, total in rows
    }


def write_spec(path: Path, tmp_path: Path, eu: str, us: str, open_orders: str = "[eu, us]") -> Path:
    path.write_text(
        SPEC.format(state=tmp_path / "state", label="db", eu=eu, us=us, open_orders=open_orders)
    )
    return path


def start(spec: Path) -> Daemon:
    daemon = Daemon(load_spec([spec]), [spec])
    for poll in daemon.polls.values():
        poll.restore()
    return daemon


class TestManyDatabases:
    def test_each_database_its_own_part(
        self, tmp_path: Path, two_schemas: dict[str, tuple[str, str]]
    ) -> None:
        eu, us = two_schemas["eu"][0], two_schemas["us"][0]
        for dsn, statuses in ((eu, ["new", "new", "paid"]), (us, ["new", "shipped"])):
            for status in statuses:
                run_sql(dsn, "INSERT INTO orders (status) VALUES (%s)", (status,))
        add_events(eu, 1, ["a", "b", "a", "a", "b"])  # 5 rows: two full batches and one
        add_events(us, 1, ["a", "a"])
        spec = write_spec(tmp_path / "spec.yaml", tmp_path, eu, us)
        unreachable = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"

        daemon = start(spec)
        try:
            assert sorted(daemon.polls) == [
                "events_total@eu",
                "events_total@us",
                "open_orders@eu",
                "open_orders@us",
            ]
            assert daemon.poll_all_once()
            found = samples(daemon)
            for name, dsn, region in (("eu", eu, "europe"), ("us", us, "america")):
                rows = run_sql(dsn, "SELECT status, count(*) FROM orders GROUP BY status")
                assert series(found, "open_orders", db=name) == {
                    (("region", region), ("service", "shop"), ("status", s)): float(n)
                    for s, n in rows
                }
                assert series(found, "events_total", db=name) == {
                    tuple(kv for kv in key if kv[0] != "db"): value
                    for key, value in expected_events(dsn, region, name, "db").items()
                }
                up = ("kpi_exporter_kpi_up", (("database", name), ("kpi", "events_total")))
                assert found[up] == 1
        finally:
            daemon.stop(grace=0)

        # restart with us unreachable, after new rows in both: only us fails
        add_events(eu, 6, ["b", "c"])
        add_events(us, 3, ["b"])
        write_spec(spec, tmp_path, eu, unreachable)
        daemon = start(spec)
        try:
            assert not daemon.poll_all_once()
            found = samples(daemon)
            for kpi in ("open_orders", "events_total"):
                assert found[("kpi_exporter_kpi_up", (("database", "eu"), ("kpi", kpi)))] == 1
                assert found[("kpi_exporter_kpi_up", (("database", "us"), ("kpi", kpi)))] == 0
            assert daemon.polls["events_total@us"].status.last_reason == "connection"
            counted = series(found, "events_total")
            eu_now = expected_events(eu, "europe", "eu", "db")
            assert {k: v for k, v in counted.items() if ("db", "eu") in k} == eu_now
            # us publishes its stored totals: rows 1 and 2 (amounts 1 and 2), counted once
            assert series(found, "events_total", db="us") == {
                (("kind", "a"), ("region", "america"), ("service", "shop")): 3.0
            }
        finally:
            daemon.stop(grace=0)

        # us back: it catches up exactly once; eu counts nothing twice
        write_spec(spec, tmp_path, eu, us)
        daemon = start(spec)
        try:
            assert daemon.poll_all_once()
            found = samples(daemon)
            counted = series(found, "events_total")
            for name, dsn, region in (("eu", eu, "europe"), ("us", us, "america")):
                assert {k: v for k, v in counted.items() if ("db", name) in k} == expected_events(
                    dsn, region, name, "db"
                )
            store = daemon.store
            assert store is not None
            assert store.names() == [state_key("events_total", n) for n in ("eu", "us")]
        finally:
            daemon.stop(grace=0)

    def test_a_reload_that_drops_a_database_drops_its_series(
        self, tmp_path: Path, two_schemas: dict[str, tuple[str, str]]
    ) -> None:
        eu, us = two_schemas["eu"][0], two_schemas["us"][0]
        for dsn in (eu, us):
            run_sql(dsn, "INSERT INTO orders (status) VALUES ('new')")
            add_events(dsn, 1, ["a"])
        spec = write_spec(tmp_path / "spec.yaml", tmp_path, eu, us)
        daemon = start(spec)
        try:
            assert daemon.poll_all_once()
            kept = daemon.polls["open_orders@eu"]
            write_spec(spec, tmp_path, eu, us, open_orders="[eu]")
            assert daemon.reload() == (True, [])
            assert daemon.polls["open_orders@eu"] is kept  # its other database aside, unchanged
            assert "open_orders@us" not in daemon.polls
            found = samples(daemon)
            assert series(found, "open_orders", db="us") == {}
            assert len(series(found, "open_orders", db="eu")) == 1
            for name in ("kpi_up", "last_success_timestamp_seconds", "series"):
                assert series(found, f"kpi_exporter_{name}", kpi="open_orders", database="us") == {}
                assert series(found, f"kpi_exporter_{name}", kpi="open_orders", database="eu")
            assert (
                series(found, "kpi_exporter_query_errors_total", kpi="open_orders", database="us")
                == {}
            )

            # back on both: us polls again, from scratch
            write_spec(spec, tmp_path, eu, us)
            assert daemon.reload() == (True, [])
            assert daemon.polls["open_orders@eu"] is kept
            assert daemon.poll_all_once()
            assert len(series(samples(daemon), "open_orders", db="us")) == 1
        finally:
            daemon.stop(grace=0)


class TestUpgrade:
    def test_a_single_database_kpi_adopts_its_state_from_before_the_database_was_in_the_key(
        self, tmp_path: Path
    ) -> None:
        db = tmp_path / "app.db"
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY)")
            conn.executemany("INSERT INTO events VALUES (?)", [(i,) for i in range(1, 8)])
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            f'exporter: {{state_dir: "{tmp_path / "state"}"}}\n'
            f'databases: {{app: {{dsn: "sqlite:///{db}"}}}}\n'
            "kpis:\n"
            "  - {name: events_total, type: counter, database: app, interval: 1m, cursor: id,"
            " query: 'SELECT id FROM events WHERE id > :cursor ORDER BY id LIMIT :batch'}\n"
        )
        fingerprint = load_spec([spec]).spec.kpis[0].fingerprint()
        store = StateStore(tmp_path / "state")
        store.save("events_total", fingerprint, 5, 0, 5, {})  # as stored before, by name alone
        store.close()
        daemon = start(spec)
        try:
            assert daemon.poll_all_once()
            found = samples(daemon)
            # rows 6 and 7 only: the stored cursor (5) was kept
            assert found[("events_total", ())] == 2.0
            assert daemon.store is not None
            assert daemon.store.names() == [state_key("events_total", "app")]
        finally:
            daemon.stop(grace=0)


class TestSingleToMany:
    def test_a_kpi_that_gains_a_database_keeps_counting_the_first_once(
        self, tmp_path: Path
    ) -> None:
        paths = {name: tmp_path / f"{name}.db" for name in ("eu", "us")}
        for count, path in zip((4, 3), paths.values(), strict=True):
            with sqlite3.connect(path) as conn:
                conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY)")
                conn.executemany("INSERT INTO events VALUES (?)", [(i,) for i in range(count)])
        spec = tmp_path / "spec.yaml"
        text = (
            f'exporter: {{state_dir: "{tmp_path / "state"}"}}\n'
            f'databases: {{eu: {{dsn: "sqlite:///{paths["eu"]}"}},'
            f' us: {{dsn: "sqlite:///{paths["us"]}"}}}}\n'
            "kpis:\n"
            "  - {name: events_total, type: counter, database: DATABASE, interval: 1m,"
            " cursor: id, initial_cursor: -1, start: earliest,"
            " query: 'SELECT id FROM events WHERE id > :cursor ORDER BY id LIMIT :batch'}\n"
        )
        spec.write_text(text.replace("DATABASE", "eu"))
        daemon = start(spec)
        try:
            assert daemon.poll_all_once()
            assert samples(daemon)[("events_total", ())] == 4.0
            with sqlite3.connect(paths["eu"]) as conn:
                conn.execute("INSERT INTO events VALUES (4)")
            spec.write_text(text.replace("DATABASE", "[eu, us]"))
            assert daemon.reload() == (True, [])
            assert daemon.poll_all_once()
            found = samples(daemon)
            # eu's cursor and total go on under the new label: rows 0-3 are not counted again
            assert series(found, "events_total") == {
                (("database", "eu"),): 5.0,
                (("database", "us"),): 3.0,
            }
            assert ("events_total", ()) not in found
        finally:
            daemon.stop(grace=0)
