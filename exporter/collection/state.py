"""CursorState and its SQLite store: a batch's cursor and totals written in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from exporter.collection.totals import LabelKey, SeriesTotal

SCHEMA_VERSION = 1
STATE_FILE = "state.db"


def state_key(kpi: str, database: str) -> str:
    """The state of one KPI on one database ('@' is in no KPI or database name). Before
    KPIs could span databases a KPI's state was stored under its bare name; a single-database
    KPI adopts that row (`StateStore.adopt`)."""
    return f"{kpi}@{database}"


def split_key(key: str) -> tuple[str, str | None]:
    """(KPI, database) of a state key; database None for a row stored by a version before
    state keys named the database."""
    kpi, _, database = key.partition("@")
    return kpi, database or None


class StateError(Exception):
    """The state file cannot be used (corrupt, or written by a newer version)."""


@dataclass(frozen=True)
class CursorState:
    """Where a cursor KPI stands: its cursor (and tiebreak) and every series total."""

    fingerprint: str
    cursor: Any
    tiebreak: Any
    rows: int
    series: dict[LabelKey, SeriesTotal]


def encode_value(value: Any) -> str:
    """A cursor value as tagged JSON, so it binds back with its own type."""
    if isinstance(value, bool):
        return json.dumps({"t": "bool", "v": value})
    if isinstance(value, int):
        return json.dumps({"t": "int", "v": str(value)})
    if isinstance(value, float):
        return json.dumps({"t": "float", "v": repr(value)})
    if isinstance(value, Decimal):
        return json.dumps({"t": "decimal", "v": str(value)})
    if isinstance(value, dt.datetime):
        return json.dumps({"t": "datetime", "v": value.isoformat()})
    if isinstance(value, dt.date):
        return json.dumps({"t": "date", "v": value.isoformat()})
    if value is None:
        return json.dumps({"t": "null"})
    return json.dumps({"t": "str", "v": str(value)})


def decode_value(text: str) -> Any:
    data = json.loads(text)
    kind, raw = data["t"], data.get("v")
    decoders: dict[str, Any] = {
        "bool": bool,
        "int": int,
        "float": float,
        "decimal": Decimal,
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "str": str,
    }
    if kind == "null":
        return None
    if kind not in decoders:
        raise StateError(f"unknown cursor type {kind!r} in the state file")
    return decoders[kind](raw)


class StateStore:
    """The state file under `exporter.state_dir`; one connection, writes serialized."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / STATE_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state_dir {state_dir}: {exc.strerror}") from None
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._setup()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state file {self.path} is unusable: {exc}") from None

    def _setup(self) -> None:
        conn = self._conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state file {self.path} is from a newer kpi-exporter "
                    f"(schema {version} > {SCHEMA_VERSION}); refusing to touch it"
                )
            if version < 1:
                raise StateError(f"state file {self.path} has no schema version")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StateError(f"state file {self.path} is corrupt: {check}")
            return
        if tables:
            raise StateError(f"{self.path} is not a kpi-exporter state file")
        conn.executescript(
            """
            BEGIN;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE kpis (
                name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
                cursor TEXT, tiebreak TEXT, rows INTEGER NOT NULL DEFAULT 0,
                created REAL NOT NULL, updated REAL NOT NULL);
            CREATE TABLE series (
                kpi TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL,
                count INTEGER NOT NULL DEFAULT 0, buckets TEXT NOT NULL DEFAULT '[]',
                created REAL NOT NULL, PRIMARY KEY (kpi, labels));
            COMMIT;
            """
        )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def load(self, name: str) -> CursorState | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT fingerprint, cursor, tiebreak, rows FROM kpis WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            series = {
                tuple(json.loads(labels)): SeriesTotal(created, value, count, json.loads(buckets))
                for labels, value, count, buckets, created in self._conn.execute(
                    "SELECT labels, value, count, buckets, created FROM series WHERE kpi = ?",
                    (name,),
                )
            }
        return CursorState(
            fingerprint=row[0],
            cursor=decode_value(row[1]) if row[1] is not None else None,
            tiebreak=decode_value(row[2]) if row[2] is not None else None,
            rows=int(row[3]),
            series=series,
        )

    def save(
        self,
        name: str,
        fingerprint: str,
        cursor: Any,
        tiebreak: Any,
        rows: int,
        changed: Mapping[LabelKey, SeriesTotal],
    ) -> None:
        """Store a batch's cursor and changed series in one transaction."""
        now = time.time()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO kpis (name, fingerprint, cursor, tiebreak, rows, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                    " fingerprint=excluded.fingerprint, cursor=excluded.cursor,"
                    " tiebreak=excluded.tiebreak, rows=excluded.rows, updated=excluded.updated",
                    (
                        name,
                        fingerprint,
                        encode_value(cursor),
                        encode_value(tiebreak),
                        rows,
                        now,
                        now,
                    ),
                )
                conn.executemany(
                    "INSERT INTO series (kpi, labels, value, count, buckets, created)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kpi, labels) DO UPDATE SET"
                    " value=excluded.value, count=excluded.count, buckets=excluded.buckets",
                    [
                        (
                            name,
                            json.dumps(list(k)),
                            e.value,
                            e.count,
                            json.dumps(e.buckets),
                            e.created,
                        )
                        for k, e in changed.items()
                    ],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def reset(self, name: str) -> bool:
        """Forget a KPI's cursor and totals; True if there was anything."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            found = conn.execute("DELETE FROM kpis WHERE name = ?", (name,)).rowcount > 0
            conn.execute("DELETE FROM series WHERE kpi = ?", (name,))
            conn.execute("COMMIT")
        return found

    def adopt(self, legacy: str, key: str) -> bool:
        """Move a row stored under a KPI's bare name to `key`, unless `key` has state of its
        own; True if it moved. One transaction: a crash leaves either name, never both."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                taken = conn.execute("SELECT 1 FROM kpis WHERE name = ?", (key,)).fetchone()
                moved = not taken and (
                    conn.execute("UPDATE kpis SET name = ? WHERE name = ?", (key, legacy)).rowcount
                    > 0
                )
                if moved:
                    conn.execute("UPDATE series SET kpi = ? WHERE kpi = ?", (key, legacy))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return bool(moved)

    def keep_only(self, names: Iterable[str]) -> list[str]:
        """Remove the state of KPIs no longer in the spec; returns the removed names."""
        keep = set(names)
        removed = [n for n in self.names() if n not in keep]
        for name in removed:
            self.reset(name)
        return removed

    def names(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT name FROM kpis ORDER BY name")]

    def summary(self) -> list[dict[str, Any]]:
        """One row per KPI and database for `state show`."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT k.name, k.fingerprint, k.cursor, k.tiebreak, k.rows, k.updated,"
                " (SELECT count(*) FROM series s WHERE s.kpi = k.name)"
                " FROM kpis k ORDER BY k.name"
            ).fetchall()
        return [
            {
                "kpi": split_key(name)[0],
                "database": split_key(name)[1],
                "fingerprint": fingerprint,
                "cursor": decode_value(cursor) if cursor else None,
                "tiebreak": decode_value(tiebreak) if tiebreak else None,
                "rows_processed": count,
                "updated": updated,
                "series": series,
            }
            for name, fingerprint, cursor, tiebreak, count, updated, series in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
