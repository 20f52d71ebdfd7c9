"""KpiPoll against real SQLite files: cursor counters and histograms equal the SQL ground truth."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collection.polls import KpiPoll
from exporter.collection.state import StateStore, state_key
from exporter.serving.publication import Publication
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.sqlite import SqliteSource
from exporter.spec.model import Spec

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, amount REAL, at REAL NOT NULL)
"""


def spec_for(db: Path, state: Path, *kpis: dict[str, Any]) -> Spec:
    return Spec.model_validate(
        {
            "exporter": {"state_dir": str(state), "labels": {"service": "t"}},
            "databases": {"app": {"dsn": f"sqlite:///{db}", "max_connections": 2}},
            "kpis": list(kpis),
        }
    )


class Harness:
    """Polls built the way the daemon builds them, over one SQLite file."""

    def __init__(self, tmp_path: Path, *kpis: dict[str, Any]) -> None:
        self.db = tmp_path / "app.db"
        self.state_dir = tmp_path / "state"
        self.spec = spec_for(self.db, self.state_dir, *kpis)
        self.metrics = SelfMetrics()
        self.publication = Publication(lambda om: b"")
        self.store = StateStore(self.state_dir)
        source = SqliteSource("app", f"sqlite:///{self.db}", self.spec.databases["app"], 2.0)
        self.polls = {
            k.name: KpiPoll(
                self.spec, k, source, self.metrics, self.publication.publish, self.store
            )
            for k in self.spec.kpis
        }
        for poll in self.polls.values():
            poll.restore()  # as the daemon does once a poll is in force

    def poll(self, name: str) -> bool:
        return self.polls[name].run(force=True)

    def values(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.publication.body(False, False).decode()
        return {
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "service"))): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if not s.name.endswith("_created")
        }


def writer(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(EVENTS_DDL)
    return conn


def insert(conn: sqlite3.Connection, rows: list[tuple[str, float, float]]) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (kind, amount, at) VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")


COUNTER = {
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
AMOUNT = {
    **COUNTER,
    "name": "amount_total",
    "value": "amount",
    "query": "SELECT id, kind, amount FROM events WHERE id > :cursor ORDER BY id LIMIT :batch",
}
HISTOGRAM = {
    "name": "amount_dist",
    "type": "histogram",
    "database": "app",
    "interval": "1s",
    "cursor": "at",
    "tiebreak": "id",
    "start": "earliest",
    "batch": 5,
    "buckets": [1, 10, 50],
    "labels": ["kind"],
    "value": "amount",
    "query": (
        "SELECT id, at, kind, amount FROM events WHERE (at > :cursor OR (at = :cursor AND"
        " id > :tiebreak)) ORDER BY at, id LIMIT :batch"
    ),
}


def truth(
    conn: sqlite3.Connection, after_id: int = 0
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The ground truth, computed by SQL on the same table."""
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for kind, count, total in conn.execute(
        "SELECT kind, count(*), sum(amount) FROM events WHERE id > ? GROUP BY kind", (after_id,)
    ):
        expected[("events_total", (("kind", kind),))] = count
        expected[("amount_total", (("kind", kind),))] = total
    return expected


def histogram_truth(
    conn: sqlite3.Connection,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for kind, count, total, b1, b10, b50 in conn.execute(
        "SELECT kind, count(*), sum(amount), sum(amount <= 1), sum(amount <= 10), sum(amount <= 50)"
        " FROM events GROUP BY kind"
    ):
        key = (("kind", kind),)
        expected[("amount_dist_count", key)] = count
        expected[("amount_dist_sum", key)] = total
        for le, value in (("1.0", b1), ("10.0", b10), ("50.0", b50), ("+Inf", count)):
            expected[("amount_dist_bucket", tuple(sorted((*key, ("le", le)))))] = value
    return expected


class TestCursorCounters:
    def test_random_batches_equal_ground_truth(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        h = Harness(tmp_path, COUNTER, AMOUNT)
        rng = random.Random(7)
        for _ in range(25):
            insert(
                conn,
                [
                    (rng.choice("abc"), round(rng.uniform(0, 100), 2), 0.0)
                    for _ in range(rng.randint(0, 30))
                ],
            )
            assert h.poll("events_total") and h.poll("amount_total")
            got = h.values()
            for key, value in truth(conn).items():
                assert got[key] == pytest.approx(value), key

    def test_restart_continues_from_stored_totals(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 1.0, 0.0)] * 20)
        first = Harness(tmp_path, COUNTER)
        assert first.poll("events_total")
        first.store.close()
        insert(conn, [("b", 1.0, 0.0)] * 5)
        second = Harness(tmp_path, COUNTER)
        # published from state before the database is asked anything
        assert second.values()[("events_total", (("kind", "a"),))] == 20
        assert second.poll("events_total")
        assert second.values() == {k: v for k, v in truth(conn).items() if k[0] == "events_total"}

    def test_start_latest_counts_only_new_rows(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 1.0, 0.0)] * 30)
        h = Harness(tmp_path, {**COUNTER, "start": "latest"})
        assert h.poll("events_total")
        assert h.values() == {}
        insert(conn, [("a", 1.0, 0.0)] * 3)
        assert h.poll("events_total")
        assert h.values() == {("events_total", (("kind", "a"),)): 3}

    def test_ties_cut_by_the_batch_are_not_lost(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        # `at` cursor without tiebreak: runs of equal values straddle the batch of 7
        rows = [("a", 1.0, float(t)) for t in (1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 4, 5)]
        insert(conn, rows)
        kpi = {
            **COUNTER,
            "cursor": "at",
            "query": "SELECT at, kind FROM events WHERE at > :cursor ORDER BY at LIMIT :batch",
        }
        h = Harness(tmp_path, kpi)
        assert h.poll("events_total")
        assert h.values() == {("events_total", (("kind", "a"),)): len(rows)}

    def test_tie_longer_than_batch_fails_with_advice(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 1.0, 1.0)] * 10)
        kpi = {
            **COUNTER,
            "cursor": "at",
            "query": "SELECT at, kind FROM events WHERE at > :cursor ORDER BY at LIMIT :batch",
        }
        h = Harness(tmp_path, kpi)
        assert not h.poll("events_total")
        assert "set 'tiebreak' or a larger 'batch'" in (
            h.polls["events_total"].status.last_error or ""
        )

    def test_changed_query_resets_only_that_kpi(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 2.0, 0.0)] * 10)
        h = Harness(tmp_path, COUNTER, AMOUNT)
        assert h.poll("events_total") and h.poll("amount_total")
        h.store.close()
        changed = {
            **COUNTER,
            "query": COUNTER["query"].replace("SELECT id, kind", "SELECT kind, id"),
        }
        h2 = Harness(tmp_path, changed, AMOUNT)
        assert h2.poll("events_total") and h2.poll("amount_total")
        assert h2.store.load(state_key("amount_total", "app")).series[("a",)].value == 20.0  # type: ignore[union-attr]
        assert h2.values()[("events_total", (("kind", "a"),))] == 10  # re-counted from earliest

    def test_unordered_rows_fail_the_kpi(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 1.0, 0.0)] * 3)
        kpi = {
            **COUNTER,
            "query": "SELECT id, kind FROM events WHERE id > :cursor ORDER BY id DESC LIMIT :batch",
        }
        h = Harness(tmp_path, kpi)
        assert not h.poll("events_total")
        assert "not in cursor order" in (h.polls["events_total"].status.last_error or "")


class TestCursorHistogram:
    def test_buckets_equal_sql(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        h = Harness(tmp_path, HISTOGRAM)
        rng = random.Random(3)
        for _ in range(10):
            stamp = float(rng.randint(1, 5))  # many rows share one timestamp
            insert(
                conn,
                [
                    (rng.choice("xy"), rng.choice([0.5, 1, 7, 10, 49, 200]), stamp)
                    for _ in range(12)
                ],
            )
            # rows keep arriving with later timestamps only (what `settle` guarantees)
            conn.execute(
                "UPDATE events SET at = at + 100 WHERE id > (SELECT max(id) - 12 FROM events)"
            )
        assert h.poll("amount_dist")
        got = h.values()
        assert {k: v for k, v in got.items() if k[0].startswith("amount_dist")} == histogram_truth(
            conn
        )


class TestFailuresStayLocal:
    def test_bad_kpi_fails_alone_and_is_counted(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 1.0, 0.0)])
        bad = {
            "name": "broken",
            "type": "gauge",
            "database": "app",
            "interval": "1s",
            "labels": ["missing"],
            "query": "SELECT count(*) AS value FROM events",
        }
        h = Harness(tmp_path, COUNTER, bad)
        assert not h.poll("broken") and h.poll("events_total")
        status = h.polls["broken"].status
        assert status.state == "failed" and status.last_reason == "result"
        assert "label column 'missing' is missing" in (status.last_error or "")
        errors = h.metrics.registry.get_sample_value(
            "kpi_exporter_query_errors_total",
            {"kpi": "broken", "database": "app", "reason": "result"},
        )
        assert errors == 1
        assert h.values()[("events_total", (("kind", "a"),))] == 1

    def test_failed_poll_keeps_last_good_snapshot_and_backs_off(self, tmp_path: Path) -> None:
        conn = writer(tmp_path / "app.db")
        insert(conn, [("a", 1.0, 0.0)])
        gauge = {
            "name": "event_count",
            "type": "gauge",
            "database": "app",
            "interval": "1s",
            "query": "SELECT count(*) AS value FROM events",
        }
        h = Harness(tmp_path, gauge)
        assert h.poll("event_count")
        conn.execute("ALTER TABLE events RENAME TO gone")
        poll = h.polls["event_count"]
        assert not poll.run(force=True) and not poll.run(force=True)
        assert poll.status.last_reason == "sql" and poll.status.retry_at > poll.status.last_run  # type: ignore[operator]
        assert not poll.run()  # inside the backoff: skipped, no query
        assert poll.status.failures == 2
        assert h.values()[("event_count", ())] == 1  # last good value still published
