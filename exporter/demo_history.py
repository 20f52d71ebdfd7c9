"""Days of past traffic for the demo database, for `backfill` and `backtest` to work on.

The rows are the simulator's own (exporter.demo.insert_events: the same RATES, tables and
incident model; demo.Visits for users and sessions), written chunk by chunk from the oldest,
so ids follow event time as they do live. Three things differ from the live simulator: a
daily cycle scales every rate (1 at PEAK_HOUR UTC, TROUGH_LOAD twelve hours away, a cosine
between), `scale` multiplies it for a lighter history, and each visit is a session row of its
own (the simulator moves the session's last_seen), so past active users can be counted.
Trouble comes at the simulator's fixed times (demo.TROUBLES), so each kind's windows() tell a
backtest when it was.
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter import demo

CHUNK = 60.0  # seconds of traffic per insert_events call: the daily cycle's resolution
PEAK_HOUR = 15.0  # UTC hour of the day's busiest traffic: the simulator's RATES
TROUGH_LOAD = 0.8  # the quietest hour's share of RATES (night traffic)
ACTIVE_WINDOW = 300.0  # active_users counts the last 5 minutes of visits
HISTORY_SEED = 60  # seed_file's random seed: the same rows, relative to now, on every run
Progress = Callable[[float, float], None]  # (seconds written, seconds in all)


def daily_load(at: float) -> float:
    """The share of the simulator's RATES at epoch `at`: 1 at PEAK_HOUR UTC, TROUGH_LOAD at
    the opposite hour."""
    phase = 2 * math.pi * (at - PEAK_HOUR * 3600) / demo.DAY
    return TROUGH_LOAD + (1 - TROUGH_LOAD) * (1 + math.cos(phase)) / 2


def write_history(
    conn: Any,
    dialect: str,
    since: float,
    until: float,
    rng: random.Random,
    scale: float = 1.0,
    progress: Progress | None = None,
    lead_in: float = 0.0,
) -> None:
    """Insert the rows of [since, until) at `scale` times the daily cycle, one CHUNK of
    traffic (one commit) at a time: users, a session row per visit (demo.Visits), events; then
    the sessions as the simulator would leave them. Before `since`, `lead_in` seconds of users
    and visits only (who is active at `since`). Users already in the tables should have signed
    up before `since - lead_in`."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    demo.demo_dialect(dialect)
    visits = demo.Visits(conn.cursor())
    at = since - lead_in
    while at < since:
        end = min(at + CHUNK, since)
        visits.insert(conn.cursor(), dialect, rng, end, end - at, scale * daily_load(end))
        at = end
    while at < until:
        end = min(at + CHUNK, until)
        load = scale * daily_load((at + end) / 2)
        visits.insert(conn.cursor(), dialect, rng, end, end - at, load)
        demo.insert_events(conn, dialect, end, rng, end - at, load)
        at = end
        if progress is not None:
            progress(at - since, until - since)
    visits.settle(conn.cursor(), dialect)
    conn.commit()


def seed_with_history(
    conn: Any,
    dialect: str,
    now: float,
    rng: random.Random,
    days: float,
    scale: float = 1.0,
    progress: Progress | None = None,
) -> None:
    """seed(), with `days` of history before the seed's last minutes of traffic: the seed's
    users and sessions up to the history's start (less ACTIVE_WINDOW, whose visits make the
    first instant's active users), then the history, then the recent activity (ids in time
    order)."""
    recent = now - demo.SEED_EVENT_SECONDS
    since = recent - days * demo.DAY
    demo.seed_users(conn, dialect, since - ACTIVE_WINDOW, rng)
    write_history(conn, dialect, since, recent, rng, scale, progress, ACTIVE_WINDOW)
    demo.seed_recent_activity(conn, dialect, now, rng)


def seed_file(
    path: Path, days: float, scale: float = 1.0, progress: Progress | None = None
) -> bool:
    """Create the demo's SQLite database at `path` with `days` of history (HISTORY_SEED's rows)
    up to now; False, touching nothing, when it already has users."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        demo.create_schema(conn, "sqlite")
        if conn.execute("SELECT count(*) FROM users").fetchone()[0]:
            return False
        rng = random.Random(HISTORY_SEED)  # nosec B311  # simulated traffic, no secret
        seed_with_history(conn, "sqlite", time.time(), rng, days, scale, progress)
        return True
    finally:
        conn.close()
