"""CursorReplay on SQLite: totals at each step against a reference computed here, rows out of
cursor order (within and beyond the reorder window), and float sums equal to the live ones."""

from __future__ import annotations

import random
import sqlite3
from functools import reduce
from operator import add
from pathlib import Path

import pytest

from exporter.collection.series import ResultError
from exporter.history.replay import TAIL_BATCHES, CursorReplay, StepGrid
from exporter.sources.registry import open_source
from exporter.spec.model import Database, Kpi

START = 1_700_000_000.0
STEP = 60.0
QUERY = "SELECT id, at, kind, amount FROM events WHERE id > :cursor ORDER BY id LIMIT :batch"


def table(path: Path, rows: list[tuple[float | None, str, float]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL, kind TEXT, amount REAL)"
        )
        conn.executemany("INSERT INTO events (at, kind, amount) VALUES (?, ?, ?)", rows)


def replay(path: Path, reorder: float, count: int, batch: int = 50) -> CursorReplay:
    kpi = Kpi.model_validate(
        {
            "name": "amount_total",
            "type": "counter",
            "database": "app",
            "interval": "1s",
            "cursor": "id",
            "event_time": "at",
            "value": "amount",
            "labels": ["kind"],
            "batch": batch,
            "query": QUERY,
        }
    )
    source = open_source("app", Database(dsn=f"sqlite:///{path}"), 5.0)  # type: ignore[arg-type]
    return CursorReplay(kpi, "amount_total", {}, source, StepGrid(START, STEP, count), 0.0, reorder)


def reference(rows: list[tuple[float | None, str, float]], instant: float) -> dict[str, float]:
    """Per kind, the amounts of rows up to `instant`, added in id order (as the live poll)."""
    upto = [(kind, amount) for at, kind, amount in rows if at is not None and at <= instant]
    return {
        kind: reduce(add, [amount for k, amount in upto if k == kind], 0.0)
        for kind in sorted({kind for kind, _ in upto})
    }


def totals(replay: CursorReplay, index: int) -> dict[str, float]:
    return {key[0]: entry.value for key, entry in replay.advance(index).items()}


@pytest.fixture
def disordered() -> list[tuple[float | None, str, float]]:
    """400 rows over 100 steps in id order, each up to 45 s behind its place in time."""
    rng = random.Random(3)
    rows = []
    for index in range(400):
        at = START - 120 + index * STEP / 4 - rng.uniform(0, 45)
        rows.append((round(at, 2), rng.choice("ab"), rng.lognormvariate(0, 1)))
    rows.insert(88, (START + 20 * STEP, "a", 1.0))  # exactly on a step: counts at that step
    return rows


def test_totals_at_every_step_equal_the_rows_up_to_it(
    tmp_path: Path, disordered: list[tuple[float | None, str, float]]
) -> None:
    table(tmp_path / "e.db", disordered)
    replayed = replay(tmp_path / "e.db", reorder=60.0, count=100)
    for index in range(100):
        instant = START + index * STEP
        expected = reference(disordered, instant)
        assert totals(replayed, index) == pytest.approx(expected, rel=1e-12), index
    assert replayed.late_rows == 0


def test_in_order_sums_are_bit_identical_to_the_live_ones(tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [(START + i * 7.3, rng.choice("ab"), rng.random() * 1e3) for i in range(800)]
    table(tmp_path / "e.db", rows)
    replayed = replay(tmp_path / "e.db", reorder=0.0, count=98, batch=37)
    for index in (0, 13, 50, 97):
        assert totals(replayed, index) == reference(rows, START + index * STEP)  # exact


def test_rows_beyond_the_reorder_window_are_late_but_never_lost(
    tmp_path: Path, disordered: list[tuple[float | None, str, float]]
) -> None:
    disordered.append((START + 20 * STEP, "b", 2.0))  # 70 minutes behind the row before it
    table(tmp_path / "e.db", disordered)
    replayed = replay(tmp_path / "e.db", reorder=STEP, count=100)
    for index in range(100):
        last = totals(replayed, index)
    assert replayed.late_rows == 1 and replayed.latest_late >= 60 * STEP
    assert last == pytest.approx(reference(disordered, START + 99 * STEP), rel=1e-12)


def test_a_null_event_time_names_the_column(tmp_path: Path) -> None:
    table(tmp_path / "e.db", [(START, "a", 1.0), (None, "a", 2.0)])
    with pytest.raises(ResultError, match="event_time column 'at' holds NULL"):
        replay(tmp_path / "e.db", reorder=0.0, count=3).advance(2)


def test_a_row_far_ahead_of_its_neighbours_keeps_memory_bounded(tmp_path: Path) -> None:
    """Row 2 is a day ahead of the rest: the rows behind it are added out of cursor order
    once TAIL_BATCHES batches wait, and the totals still equal the rows up to each step."""
    rows = [(START + i * 3.0, "a", 1.0) for i in range(2000)]
    rows.insert(2, (START + 90 * STEP, "b", 5.0))
    table(tmp_path / "e.db", rows)
    replayed = replay(tmp_path / "e.db", reorder=STEP, count=100, batch=20)
    for index in range(100):
        assert totals(replayed, index) == reference(rows, START + index * STEP), index
        assert replayed.tail_rows <= (TAIL_BATCHES + 2) * 20 + 1
    assert replayed.late_rows == 0
