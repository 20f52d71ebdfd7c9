"""The `state` commands as subprocesses: show, reset, removed KPIs, corrupt files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

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
