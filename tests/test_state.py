"""The state file: round trips, refusal of corrupt or newer files, and the `state` commands."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from exporter.collection.state import (
    SCHEMA_VERSION,
    StateError,
    StateStore,
    decode_value,
    encode_value,
)
from exporter.collection.totals import SeriesTotal

SPEC = """\
exporter: {{state_dir: {state}}}
databases:
  app: {{dsn: "sqlite:///{db}"}}
kpis:
  - name: events_total
    type: counter
    database: app
    interval: 1s
    cursor: id
    start: earliest
    query: SELECT id FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestCursorValues:
    @pytest.mark.parametrize(
        "value",
        [
            0,
            2**62,
            1.5,
            Decimal("12.3400"),
            "abc",
            None,
            dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC),
            dt.date(2026, 1, 2),
        ],
    )
    def test_round_trip_keeps_type(self, value: object) -> None:
        back = decode_value(encode_value(value))
        assert back == value and type(back) is type(value)


class TestStateStore:
    def test_save_load_reset(self, tmp_path: Path) -> None:
        store = StateStore(tmp_path)
        series = {("a",): SeriesTotal(10.0, 3.0, 2, [1, 1, 0])}
        store.save("k", "fp", 41, 7, 2, series)
        state = store.load("k")
        assert state is not None
        assert (state.fingerprint, state.cursor, state.tiebreak, state.rows) == ("fp", 41, 7, 2)
        assert state.series == series
        assert store.keep_only(["other"]) == ["k"]
        assert store.load("k") is None
        store.close()

    def test_newer_version_is_refused(self, tmp_path: Path) -> None:
        StateStore(tmp_path).close()
        conn = sqlite3.connect(tmp_path / "state.db")
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
        conn.commit()
        conn.close()
        with pytest.raises(StateError, match="from a newer kpi-exporter"):
            StateStore(tmp_path)

    def test_corrupt_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "state.db").write_bytes(b"this is not a database" * 100)
        with pytest.raises(StateError, match="unusable"):
            StateStore(tmp_path)


class TestStateCommands:
    @pytest.fixture
    def spec(self, tmp_path: Path) -> Path:
        db = tmp_path / "app.db"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO events VALUES (?)", [(i,) for i in range(1, 6)])
        conn.commit()
        conn.close()
        path = tmp_path / "spec.yaml"
        path.write_text(SPEC.format(state=tmp_path / "state", db=db))
        return path

    def test_show_and_reset(self, spec: Path) -> None:
        assert cli("once", "-c", str(spec)).returncode == 0
        shown = json.loads(cli("state", "show", "-c", str(spec)).stdout)
        assert shown[0]["kpi"] == "events_total" and shown[0]["cursor"] == 5
        assert shown[0]["rows_processed"] == 5 and shown[0]["series"] == 1
        assert cli("state", "reset", "-c", str(spec), "events_total").stdout.strip() == (
            "reset events_total"
        )
        assert json.loads(cli("state", "show", "-c", str(spec)).stdout) == []

    def test_removed_kpi_loses_its_state_on_next_start(self, spec: Path) -> None:
        text = spec.read_text()
        second = text.replace("name: events_total", "name: more_events_total")
        spec.write_text(text + second[second.index("  - name: more_events_total") :])
        assert cli("once", "-c", str(spec)).returncode == 0
        shown = json.loads(cli("state", "show", "-c", str(spec)).stdout)
        assert [row["kpi"] for row in shown] == ["events_total", "more_events_total"]
        spec.write_text(text)
        assert cli("once", "-c", str(spec)).returncode == 0
        assert [row["kpi"] for row in json.loads(cli("state", "show", "-c", str(spec)).stdout)] == [
            "events_total"
        ]

    def test_corrupt_state_exits_2_and_is_left_alone(self, spec: Path, tmp_path: Path) -> None:
        state = tmp_path / "state"
        state.mkdir()
        junk = b"garbage" * 1000
        (state / "state.db").write_bytes(junk)
        result = cli("once", "-c", str(spec))
        assert result.returncode == 2
        assert "state file" in result.stderr and "Traceback" not in result.stderr
        assert (state / "state.db").read_bytes() == junk  # never silently replaced
