"""The state file on disk: save, load, reset, and refusal of corrupt or newer files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from exporter.collection.state import (
    SCHEMA_VERSION,
    StateError,
    StateStore,
)
from exporter.collection.totals import SeriesTotal


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
