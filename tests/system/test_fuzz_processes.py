"""Fuzzing through processes: `check` on nasty spec files exits 2 without a traceback, and
fuzzed query results pass `promtool check metrics`."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzzing import NASTY, SPECS, must_refuse, result_rows

from exporter.collection.series import ResultError, render_plain
from exporter.sources.base import Rows


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1024 * 1024 * 1024, 1024 * 1024 * 1024))


@pytest.mark.parametrize(
    "name", ["billion_laughs", "python_object", "deep_flow_list", "deep_block", "huge_string"]
)
def test_check_command_exits_2_without_traceback(name: str, tmp_path: Path) -> None:
    """The CLI: exit 2 with a message, no traceback, within 60 s and 1 GiB of address space."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(NASTY[name])
    done = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        preexec_fn=_limit_memory,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert str(path) in done.stderr
    assert not Path("/tmp/kpi-fuzz-pwned").exists()


@pytest.mark.promtool
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["gauge", "counter"]), result_rows)
def test_fuzzed_results_pass_promtool_check_metrics(kind: str, rows: list[Any]) -> None:
    promtool = tool("promtool")
    spec = SPECS[kind]
    kpi = spec.kpis[0]
    result = Rows(("a", "b", "value"), rows)
    if must_refuse(kind, rows):  # decided by the reference, not by render_plain
        with pytest.raises(ResultError):
            render_plain(kpi, kpi.name, dict(spec.exporter.labels), result, 0)
        return
    snapshot, _ = render_plain(kpi, kpi.name, dict(spec.exporter.labels), result, 0)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=snapshot.text, capture_output=True, timeout=30
    )
    # promtool exits 1 when the text does not parse, 3 for lint advice only
    assert b"error while linting" not in done.stderr, done.stderr.decode(errors="replace")
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
