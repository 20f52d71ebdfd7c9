"""Backfill of a KPI on two databases: one family per file (strict OpenMetrics), each database's
series with its labels, equal at every step to that database's own rows up to it."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import pytest
from support.many_databases import events_kpi

from exporter.history.backfill import BackfillError, Summary, backfill
from exporter.spec.loading import load_spec

SPEC = """\
exporter: {{labels: {{service: shop}}}}
databases:
  eu: {{dsn: "sqlite:///{eu}", labels: {{region: europe}}}}
  us: {{dsn: "sqlite:///{us}"}}
kpis:
""" + events_kpi("id, at, kind", "event_time: at")
SAMPLE = re.compile(r"events_total\{(.*)\} (\S+) (\S+)")
LABEL = re.compile(r'(\w+)="([^"]*)"')
START, END, STEP = 1_700_000_000.0, 1_700_000_000.0 + 6 * 3600, 600.0


def make(path: Path, rng: random.Random) -> list[tuple[float, str]]:
    rows = sorted((rng.uniform(START - 3600, END), rng.choice("ab")) for _ in range(300))
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL, kind TEXT)")
        conn.executemany("INSERT INTO events (at, kind) VALUES (?, ?)", rows)
    return rows


def run_backfill(config: Path, target: dict[str, str], out: Path) -> Summary:
    return backfill(
        load_spec([config], env={}).spec,
        since=START,
        until=END,
        step=STEP,
        only=(),
        target=target,
        output=out,
        fmt="openmetrics",
        reorder=0.0,
    )


def test_each_database_replayed_into_one_family(tmp_path: Path) -> None:
    rng = random.Random(11)
    rows = {name: make(tmp_path / f"{name}.db", rng) for name in ("eu", "us")}
    config = tmp_path / "spec.yaml"
    config.write_text(SPEC.format(eu=tmp_path / "eu.db", us=tmp_path / "us.db"))
    out = tmp_path / "out"
    summary = run_backfill(config, {"instance": "e:9091"}, out)
    assert summary.replayed == ["events_total"]
    seen: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
    for path in sorted(out.glob("*.om")):
        text = path.read_text()
        assert text.count("# TYPE events counter\n") == 1, path  # one family, both databases
        for line in text.splitlines():
            match = SAMPLE.fullmatch(line)
            if match:
                labels = tuple(sorted(LABEL.findall(match.group(1))))
                seen.setdefault(labels, {})[float(match.group(3))] = float(match.group(2))
    region = {"eu": {"region": "europe"}, "us": {}}
    for name, events in rows.items():
        for kind in "ab":
            labels = {"database": name, "job": "kpi-exporter", "instance": "e:9091"}
            labels |= {"service": "shop", "kind": kind, **region[name]}
            series = seen[tuple(sorted(labels.items()))]
            for at, value in series.items():
                expected = sum(1 for t, k in events if k == kind and t <= at)
                assert value == expected, (name, kind, at)
            first = -(-START // STEP) * STEP  # the steps: multiples of STEP from START on
            assert sorted(series) == [
                first + i * STEP for i in range(int((END - first) // STEP) + 1)
            ]
    assert len(seen) == 4


def test_a_target_label_named_like_the_database_label_is_refused(tmp_path: Path) -> None:
    for name in ("eu", "us"):
        make(tmp_path / f"{name}.db", random.Random(1))
    config = tmp_path / "spec.yaml"
    config.write_text(SPEC.format(eu=tmp_path / "eu.db", us=tmp_path / "us.db"))
    with pytest.raises(BackfillError, match="'region' is also set by KPI events_total's"):
        run_backfill(config, {"region": "x"}, tmp_path / "out")
