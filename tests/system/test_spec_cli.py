"""`check`, `run` and `schema` as subprocesses: exit codes and every problem reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.specs import BASE, kpi, write


class TestCli:
    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "exporter.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_check_ok(self, tmp_path: Path) -> None:
        result = self.run("check", "-c", str(write(tmp_path, BASE)))
        assert result.returncode == 0, result.stderr
        assert "ok: 1 KPIs" in result.stdout

    def test_check_exits_2_with_every_problem(self, tmp_path: Path) -> None:
        path = write(tmp_path, kpi("labels: [le]\nunknown: 1"))
        result = self.run("check", "-c", str(path))
        assert result.returncode == 2
        assert f"{path}:17: kpis[1].labels[0]: 'le' is a reserved label name" in result.stderr
        assert f"{path}:18: kpis[1].unknown: unknown key 'unknown'" in result.stderr
        assert "Traceback" not in result.stderr

    def test_run_with_bad_spec_exits_2_before_listening(self, tmp_path: Path) -> None:
        result = self.run(
            "run", "-c", str(write(tmp_path, kpi("labels: [le]"))), "--listen", "127.0.0.1:1"
        )
        assert result.returncode == 2
        assert "reserved label name" in result.stderr

    def test_schema_is_json_schema(self) -> None:
        result = self.run("schema")
        schema = json.loads(result.stdout)
        assert "kpis" in schema["properties"]
        assert "Kpi" in schema["$defs"]
