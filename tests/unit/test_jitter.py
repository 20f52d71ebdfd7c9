"""Interval jitter: run k stays within its slot, however many runs came before."""

from __future__ import annotations

import datetime as dt

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
