"""The demo history's visit model (demo.Visits): every visit is a session row, so the active
users of a past instant can be counted, at the live simulator's level; login outages."""

from __future__ import annotations

import random
import sqlite3
import statistics
from pathlib import Path

import pytest
import yaml

from exporter import demo, demo_history

ROOT = Path(__file__).resolve().parents[2]
TUESDAY = 1_764_633_600.0  # 2025-12-02T00:00:00Z, a Tuesday
PEAK = TUESDAY + demo_history.PEAK_HOUR * 3600  # load 1: the simulator's RATES
OUTAGE = TUESDAY + 17.5 * 3600  # the login outage's start that week
SPEC = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
KPIS = {kpi["name"]: kpi["query"] for kpi in SPEC["kpis"]}


def active_users(conn: sqlite3.Connection, now: float) -> int:
    """The demo spec's active_users query at `now`."""
    return int(conn.execute(KPIS["active_users"].replace(":now", "?"), (now, now)).fetchone()[0])


def history(since: float, until: float, seed: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    rng = random.Random(seed)
    demo.seed_users(conn, "sqlite", since, rng)
    demo_history.write_history(conn, "sqlite", since, until, rng)
    return conn


def live(since: float, until: float, seed: int, sample: float = 30.0) -> dict[float, int]:
    """The simulator in 1 s ticks from a seed at `since`: active users after every `sample`."""
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    rng = random.Random(seed)
    demo.seed(conn, "sqlite", since, rng)
    counts = {}
    for tick in range(1, int(until - since) + 1):
        now = since + tick
        demo.insert_activity(conn, "sqlite", now, rng, 1.0)
        if tick % sample == 0:
            counts[now] = active_users(conn, now)
    return counts


def test_active_users_of_any_past_instant_are_the_visits_in_its_five_minutes() -> None:
    since, until = PEAK - 1800, PEAK + 600
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    rng = random.Random(11)
    demo.seed_users(conn, "sqlite", since, rng)
    seeded = conn.execute("SELECT user_id, last_seen FROM sessions ORDER BY id").fetchall()
    demo_history.write_history(conn, "sqlite", since, until, rng)
    rows = conn.execute("SELECT user_id, last_seen FROM sessions ORDER BY id").fetchall()
    assert rows[: len(seeded)] == seeded
    visits, tail = rows[len(seeded) : -demo.Visits.SETTLED], rows[-demo.Visits.SETTLED :]
    assert all(since <= at < until for _, at in visits)
    # the settled tail repeats earlier rows: it changes no instant's count
    assert set(tail) <= set(seeded) | set(visits)
    # new users, returning sessions and touches at the rates (0.2 + 0.3 + 6 a second) times
    # the daily cycle (0.9997 on average over these 40 minutes around the peak)
    assert len(visits) == pytest.approx(6.5 * 2400, rel=0.03)
    users = conn.execute("SELECT count(*) FROM users WHERE created_at >= ?", (since,)).fetchone()
    assert users[0] == pytest.approx(0.2 * 2400, rel=0.2)
    early = conn.execute(  # nobody is seen before they signed up
        "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.last_seen < u.created_at"
    ).fetchone()[0]
    assert early == 0
    for now in (since + 300, PEAK - 7.5, PEAK + 299, until):
        expected = len({user for user, at in rows if now - 300 < at <= now})
        assert active_users(conn, now) == expected > 300


def test_history_has_the_live_simulators_active_users() -> None:
    """At the same load (the peak, the simulator's RATES) and the same minutes, the history's
    past counts have the live simulator's level and spread (live: about 437, sd 11-14)."""
    since, until = PEAK - 1200, PEAK + 1200
    conn = history(since, until, seed=5)
    counted = live(since, until, seed=5)
    settled = [t for t in counted if t >= since + 600]  # both started 10 minutes before
    now_live = [counted[t] for t in settled]
    past = [active_users(conn, t) for t in settled]
    assert statistics.mean(past) == pytest.approx(statistics.mean(now_live), rel=0.05)
    assert 0.5 < statistics.pstdev(past) / statistics.pstdev(now_live) < 2


def test_the_simulator_goes_on_where_the_history_stops() -> None:
    """seed_with_history's first instant has its active users, and the settled sessions let
    the simulator's touches find the users the history had active, so its count stays at the
    history's level (without them it starts 16% lower and takes 8 minutes to recover)."""
    now = PEAK
    conn = sqlite3.connect(":memory:")
    demo.create_schema(conn, "sqlite")
    rng = random.Random(3)
    demo_history.seed_with_history(conn, "sqlite", now, rng, days=1 / 24)
    end = now - demo.SEED_EVENT_SECONDS
    level = statistics.mean(active_users(conn, end - s) for s in range(0, 1800, 60))
    # the history's first instant already has its active users (5 minutes of lead-in visits)
    assert active_users(conn, end - 3600) > 0.9 * level
    later = []
    for tick in range(1, 601):
        demo.insert_activity(conn, "sqlite", now + tick, rng, 1.0)
        if tick % 60 == 0:
            later.append(active_users(conn, now + tick))
    assert 0.9 * level < min(later) and max(later) < 1.1 * level, (level, later)


def test_nobody_is_seen_in_a_login_outage() -> None:
    """Tuesday 17:30-18:00 UTC: no new users or visits in history, no touches live; active
    users reach 0 five minutes in and come back after."""
    assert demo.LOGIN_OUTAGE.active(OUTAGE) and not demo.LOGIN_OUTAGE.active(OUTAGE - 1)
    assert demo.LOGIN_OUTAGE.active(OUTAGE + 1799) and not demo.LOGIN_OUTAGE.active(OUTAGE + 1800)
    since, until = OUTAGE - 900, OUTAGE + 2700
    conn = history(since, until, seed=9)
    inside = (OUTAGE, OUTAGE + 1800)
    in_sessions = "SELECT count(*) FROM sessions WHERE last_seen >= ? AND last_seen < ?"
    assert conn.execute(in_sessions, inside).fetchone()[0] == 0
    in_users = "SELECT count(*) FROM users WHERE created_at >= ? AND created_at < ?"
    assert conn.execute(in_users, inside).fetchone()[0] == 0
    counted = live(since, until, seed=9, sample=60)
    for counts in ({t: active_users(conn, t) for t in counted}, counted):
        assert counts[OUTAGE] > 300
        assert [t - OUTAGE for t, n in counts.items() if n == 0] == [
            float(s) for s in range(300, 1860, 60)
        ]
        assert counts[until] > 300
