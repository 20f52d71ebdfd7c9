"""What every database backend must do, as tests a backend's test module inherits.

A test module subclasses EngineContract and provides an `engine` fixture: a fresh, empty database
reached through the backend under test, plus a writer that uses the engine's own driver. The
expected values always come from SQL run by that writer, never from the exporter."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collection.polls import KpiPoll
from exporter.collection.state import StateStore
from exporter.serving.publication import Publication
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.base import QueryError, Source
from exporter.spec.model import Database, Spec

Event = tuple[int, str, float, float]  # id, kind, amount, stamp
Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]

EVENTS_DDL = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, kind VARCHAR(200) NOT NULL,"
    " amount DOUBLE PRECISION, stamp DOUBLE PRECISION NOT NULL)"
)


@dataclass
class Engine:
    """A fresh database with an `events` table, seen by the backend under test and a writer."""

    dsn: str
    open_source: Callable[[Database], Source]
    insert: Callable[[Sequence[Event]], None]  # committed when it returns
    fetch: Callable[[str], list[tuple[Any, ...]]]  # the ground truth, by the engine's own driver
    long_query: str  # runs for minutes unless stopped
    read_only_claimed: bool = True


GAUGE = {
    "name": "events_by_kind",
    "type": "gauge",
    "database": "app",
    "interval": "1s",
    "labels": ["kind"],
    "query": "SELECT kind, count(*) AS value FROM events GROUP BY kind",
}
DB_COUNTER = {
    "name": "amount_sum_total",
    "type": "counter",
    "database": "app",
    "interval": "1s",
    "labels": ["kind"],
    "query": "SELECT kind, sum(amount) AS value FROM events GROUP BY kind",
}
CURSOR_COUNTER = {
    "name": "events_total",
    "type": "counter",
    "database": "app",
    "interval": "1s",
    "cursor": "id",
    "start": "earliest",
    "batch": 7,
    "labels": ["kind"],
    "query": "SELECT id, kind FROM events WHERE id > :cursor ORDER BY id LIMIT :batch",
}
CURSOR_AMOUNT = {
    **CURSOR_COUNTER,
    "name": "amount_total",
    "value": "amount",
    "query": "SELECT id, kind, amount FROM events WHERE id > :cursor ORDER BY id LIMIT :batch",
}
CURSOR_HISTOGRAM = {
    "name": "amount_dist",
    "type": "histogram",
    "database": "app",
    "interval": "1s",
    "cursor": "stamp",
    "tiebreak": "id",
    "start": "earliest",
    "batch": 5,
    "buckets": [1, 10, 50],
    "labels": ["kind"],
    "value": "amount",
    "query": (
        "SELECT id, stamp, kind, amount FROM events WHERE (stamp > :cursor OR (stamp = :cursor"
        " AND id > :tiebreak)) ORDER BY stamp, id LIMIT :batch"
    ),
}


class Harness:
    """Polls built the way the daemon builds them, over the engine's database."""

    def __init__(self, engine: Engine, state_dir: Path, *kpis: dict[str, Any]) -> None:
        self.spec = Spec.model_validate(
            {
                "exporter": {"state_dir": str(state_dir), "labels": {"service": "t"}},
                "databases": {"app": {"dsn": engine.dsn, "max_connections": 2}},
                "kpis": list(kpis),
            }
        )
        self.metrics = SelfMetrics()
        self.publication = Publication(lambda om: b"")
        self.store = StateStore(state_dir)
        self.source = engine.open_source(self.spec.databases["app"])
        self.polls = {
            k.name: KpiPoll(
                self.spec, k, self.source, self.metrics, self.publication.publish, self.store
            )
            for k in self.spec.kpis
        }

    def poll(self, name: str) -> None:
        poll = self.polls[name]
        assert poll.run(force=True), poll.status.last_error

    def values(self, prefix: str = "") -> Values:
        text = self.publication.body(False, False).decode()
        return {
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "service"))): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name.startswith(prefix) and not s.name.endswith("_created")
        }

    def close(self) -> None:
        self.store.close()
        self.source.close()


def random_events(rng: random.Random, first_id: int, count: int, stamp: float) -> list[Event]:
    return [
        (first_id + i, rng.choice("abc"), rng.choice([0.5, 1.0, 7.25, 10.0, 49.5, 200.0]), stamp)
        for i in range(count)
    ]


def by_kind(engine: Engine, metric: str, aggregate: str) -> Values:
    return {
        (metric, (("kind", kind),)): float(value)
        for kind, value in engine.fetch(f"SELECT kind, {aggregate} FROM events GROUP BY kind")
    }


def run_stopped(query: Callable[[], object], stop: Callable[[], object]) -> list[QueryError]:
    """Run a query that lasts minutes unless stopped, calling `stop` until it ends (a stop
    sent before the query started is lost); the errors it raised. Fails when it still runs
    after a minute: nothing stopped it on the database."""
    errors: list[QueryError] = []

    def run() -> None:
        try:
            query()
        except QueryError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(300):
        thread.join(0.2)
        if not thread.is_alive():
            return errors
        stop()
    raise AssertionError("the query was not stopped within a minute")


class EngineContract:
    """The tests every backend passes; subclasses provide the `engine` fixture."""

    def test_gauge_equals_sql(self, engine: Engine, tmp_path: Path) -> None:
        engine.insert(random_events(random.Random(1), 1, 40, 0.0))
        harness = Harness(engine, tmp_path / "state", GAUGE)
        harness.poll("events_by_kind")
        assert harness.values() == by_kind(engine, "events_by_kind", "count(*)")
        harness.close()

    def test_database_counter_equals_sql(self, engine: Engine, tmp_path: Path) -> None:
        engine.insert(random_events(random.Random(2), 1, 40, 0.0))
        harness = Harness(engine, tmp_path / "state", DB_COUNTER)
        harness.poll("amount_sum_total")
        assert harness.values() == by_kind(engine, "amount_sum_total", "sum(amount)")
        harness.close()

    def test_cursor_counters_count_each_row_once_across_batches_and_a_restart(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        rng = random.Random(3)
        state_dir = tmp_path / "state"
        harness = Harness(engine, state_dir, CURSOR_COUNTER, CURSOR_AMOUNT)
        next_id = 1
        for round_ in range(8):
            count = rng.randint(1, 20)
            engine.insert(random_events(rng, next_id, count, float(round_)))
            next_id += count
            harness.poll("events_total")
            harness.poll("amount_total")
        harness.close()
        engine.insert(random_events(rng, next_id, 15, 9.0))
        restarted = Harness(engine, state_dir, CURSOR_COUNTER, CURSOR_AMOUNT)
        restarted.poll("events_total")
        restarted.poll("amount_total")
        got = restarted.values()
        assert {k: v for k, v in got.items() if k[0] == "events_total"} == by_kind(
            engine, "events_total", "count(*)"
        )
        amounts = by_kind(engine, "amount_total", "sum(amount)")
        assert {k: v for k, v in got.items() if k[0] == "amount_total"} == pytest.approx(amounts)
        restarted.close()

    def test_cursor_histogram_equals_sql(self, engine: Engine, tmp_path: Path) -> None:
        rng = random.Random(4)
        harness = Harness(engine, tmp_path / "state", CURSOR_HISTOGRAM)
        next_id = 1
        for stamp in (1.0, 1.0, 2.0, 3.0, 3.0, 3.0):  # rows sharing a stamp straddle batches
            engine.insert(random_events(rng, next_id, 6, stamp))
            next_id += 6
            harness.poll("amount_dist")
        expected: Values = {}
        for kind, count, total, b1, b10, b50 in engine.fetch(
            "SELECT kind, count(*), sum(amount), sum(CASE WHEN amount <= 1 THEN 1 ELSE 0 END),"
            " sum(CASE WHEN amount <= 10 THEN 1 ELSE 0 END),"
            " sum(CASE WHEN amount <= 50 THEN 1 ELSE 0 END) FROM events GROUP BY kind"
        ):
            key = (("kind", kind),)
            expected[("amount_dist_count", key)] = float(count)
            expected[("amount_dist_sum", key)] = float(total)
            for le, value in (("1.0", b1), ("10.0", b10), ("50.0", b50), ("+Inf", count)):
                expected[("amount_dist_bucket", tuple(sorted((*key, ("le", le)))))] = float(value)
        assert harness.values("amount_dist") == expected
        harness.close()

    def test_long_query_fails_as_timeout_and_frees_its_connection(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        source = engine.open_source(Database(dsn=engine.dsn, max_connections=1))
        try:
            errors = run_stopped(lambda: source.query(engine.long_query, {}, 0.5), lambda: None)
            assert [e.reason for e in errors] == ["timeout"], errors
            assert errors[0].message == "query exceeded its 0.5s timeout"
            # the one connection is usable again at once
            assert source.query("SELECT count(*) AS n FROM events", {}, 10.0).rows[0][0] == 0
        finally:
            source.close()

    def test_cancel_running_stops_a_query(self, engine: Engine) -> None:
        source = engine.open_source(Database(dsn=engine.dsn))
        try:
            errors = run_stopped(
                lambda: source.query(engine.long_query, {}, 600.0), source.cancel_running
            )
        finally:
            source.close()
        assert [e.reason for e in errors] == ["timeout"]  # the wording is the backend's

    def test_read_only_refuses_writes(self, engine: Engine) -> None:
        if not engine.read_only_claimed:
            pytest.skip("this engine does not claim read-only sessions")
        engine.insert([(1, "a", 1.0, 0.0)])
        source = engine.open_source(Database(dsn=engine.dsn))
        try:
            for statement in (
                "INSERT INTO events (id, kind, amount, stamp) VALUES (2, 'b', 1, 0)",
                "UPDATE events SET amount = 99",
                "DELETE FROM events",
                # out of the read-only transaction, where a driver runs several statements
                "COMMIT; INSERT INTO events (id, kind, amount, stamp) VALUES (3, 'c', 1, 0)",
            ):
                with pytest.raises(QueryError) as caught:
                    source.query(statement, {}, 10.0)
                assert caught.value.reason == "sql", statement
        finally:
            source.close()
        assert engine.fetch("SELECT id, kind, amount FROM events") == [(1, "a", 1.0)]

    def test_parameters_are_bound_never_formatted(self, engine: Engine) -> None:
        hostile = "x'; DELETE FROM events; --"
        engine.insert([(1, hostile, 1.0, 0.0), (2, "a", 2.0, 0.0), (3, "it's", 4.0, 0.0)])
        source = engine.open_source(Database(dsn=engine.dsn))
        query = "SELECT count(*) AS n FROM events WHERE kind = :kind"
        try:
            for kind, expected in ((hostile, 1), ("it's", 1), ("a' OR '1'='1", 0)):
                assert source.query(query, {"kind": kind}, 10.0).rows[0][0] == expected, kind
            # a colon, a percent sign and a cast-like text inside a string stay literal
            literal = "SELECT ':kind %s ::x' AS text, :kind AS kind"
            assert tuple(source.query(literal, {"kind": "k"}, 10.0).rows[0]) == (
                ":kind %s ::x",
                "k",
            )
        finally:
            source.close()
        assert len(engine.fetch("SELECT id FROM events")) == 3
