"""`check --connect` binds a query's placeholders as the daemon's poll does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import yaml

from exporter.collection.probe import probe_params, probe_spec
from exporter.runtime.daemon import Daemon
from exporter.spec.loading import load_spec
from exporter.spec.model import Kpi

# a histogram on a timestamp cursor that waits 2 s for late commits: `:settled` is a timestamp
TIMESTAMP_CURSOR = {
    "name": "event_seconds",
    "type": "histogram",
    "database": "app",
    "interval": "1m",
    "cursor": "at",
    "tiebreak": "id",
    "initial_cursor": "1970-01-01T00:00:00+00:00",
    "settle": "2s",
    "start": "earliest",
    "buckets": [1, 5],
    "value": "amount",
    "query": (
        "SELECT id, at, amount FROM events"
        " WHERE (at > :cursor OR (at = :cursor AND id > :tiebreak)) AND at <= :settled"
        " ORDER BY at, id LIMIT :batch"
    ),
}


def spec_file(tmp_path: Path, dsn: str) -> Path:
    path = tmp_path / "spec.yaml"
    spec = {
        "exporter": {"state_dir": str(tmp_path / "state")},
        "databases": {"app": {"dsn": dsn}},
        "kpis": [TIMESTAMP_CURSOR],
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def probe_and_poll(path: Path) -> None:
    """`check --connect` finds no problem, and the daemon's poll of the same KPI succeeds."""
    loaded = load_spec([path])
    assert probe_spec(loaded.spec) == []
    daemon = Daemon(loaded, [path])
    try:
        assert daemon.poll_all_once(), daemon.polls["event_seconds"].status.last_error
        body = daemon.publication.body(False, False)
        assert b"event_seconds_count 1" in body  # the row older than `settle`
    finally:
        daemon.stop(grace=0)


def test_timestamp_cursor_on_postgresql(pg_schema: tuple[str, str], tmp_path: Path) -> None:
    dsn = pg_schema[0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events (id serial PRIMARY KEY, at timestamptz NOT NULL, amount float8)"
        )
        conn.execute("INSERT INTO events (at, amount) VALUES (now() - interval '1 hour', 0.5)")
    probe_and_poll(spec_file(tmp_path, dsn))


def test_timestamp_cursor_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, amount REAL)")
        conn.execute("INSERT INTO events (at, amount) VALUES ('2001-01-01 00:00:00+00:00', 0.5)")
    conn.close()
    probe_and_poll(spec_file(tmp_path, f"sqlite:///{db}"))


@pytest.mark.parametrize("cursor", ["1970-01-01T00:00:00+00:00", 0])
def test_probe_binds_what_a_first_poll_binds(cursor: object) -> None:
    kpi = Kpi.model_validate({**TIMESTAMP_CURSOR, "initial_cursor": cursor})
    params = probe_params(kpi, now=1_000_000.0)
    assert params["cursor"] == cursor and params["tiebreak"] == 0 and params["batch"] == 1
    if isinstance(cursor, str):
        assert params["settled"].isoformat() == "1970-01-12T13:46:38+00:00"  # 999,998 s
    else:
        assert params["settled"] == 999_998.0
