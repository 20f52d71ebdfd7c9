"""Interval jitter: run k stays within its slot, however many runs came before and however long
each poll took (a fake clock, no sleeping)."""

from __future__ import annotations

import datetime as dt

import pytest
from support.clock import FakeClock
from support.kpis import kpi

from exporter.collection.scheduling import trigger_for
from exporter.spec.model import Spec


def test_interval_jitter_does_not_accumulate() -> None:
    """Run k of a 1 s KPI is due within [start + k, start + k + jitter]: the soak found
    APScheduler's jitter stacking up (every 1.05 s on average, 5% of the polls lost)."""
    spec = Spec.model_validate(
        {
            "databases": {"pg": {"dsn": "postgresql://x@127.0.0.1:1/x"}},
            "kpis": [
                {"name": "k", "type": "gauge", "database": "pg", "interval": "1s", "query": "x"}
            ],
        }
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    trigger = trigger_for(spec.kpis[0], start)
    due: dt.datetime | None = start
    for k in range(1, 3001):
        assert due is not None
        due = trigger.get_next_fire_time(due, due)
        assert due is not None
        offset = (due - start).total_seconds() - k
        assert 0 <= offset <= 0.1 + 1e-6, f"run {k} is {offset:.3f}s off its slot"


# each poll ends before the next slot opens (0.85 s plus up to 0.1 s of jitter)
@pytest.mark.parametrize("poll_seconds", [0.0, 0.5, 0.85])
def test_slots_hold_however_long_each_poll_takes(poll_seconds: float) -> None:
    """As the scheduler asks it: after each run the fake clock has moved on by the poll's
    duration, and the trigger is asked for the next fire time from the run's due time and
    that later `now`. Run k of a 1 s KPI still falls in [start + k, start + k + 0.1]."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    trigger = trigger_for(kpi(interval="1s"), start)
    clock = FakeClock(start.timestamp())
    due = start
    for k in range(1, 1001):
        clock.set(due)
        clock.advance(poll_seconds)
        following = trigger.get_next_fire_time(due, clock.now())
        assert following is not None
        offset = (following - start).total_seconds() - k
        assert 0 <= offset <= 0.1 + 1e-6, f"run {k} is {offset:.3f}s off its slot"
        due = following
