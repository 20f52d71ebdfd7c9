"""Schedule triggers: interval jitter bounds, cron, spread and stable first runs."""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from support.kpis import kpi

from exporter.collection.scheduling import (
    MAX_JITTER,
    START_SPREAD,
    first_run,
    trigger_for,
)


class TestTriggers:
    def test_interval_with_bounded_jitter(self) -> None:
        trigger = trigger_for(kpi(interval="30s"))
        assert isinstance(trigger, IntervalTrigger)
        assert trigger.interval == dt.timedelta(seconds=30) and trigger.jitter == 3.0
        assert trigger_for(kpi(interval="1h")).jitter == MAX_JITTER

    def test_cron(self) -> None:
        trigger = trigger_for(kpi(schedule="*/5 * * * *"))
        assert isinstance(trigger, CronTrigger)
        start = dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC)
        assert trigger.get_next_fire_time(None, start) == dt.datetime(
            2026, 1, 1, 0, 5, tzinfo=dt.UTC
        )

    def test_first_runs_are_spread_and_stable(self) -> None:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        offsets = {
            (first_run(kpi(name=f"kpi_{i}", interval="30s"), now) - now).total_seconds()
            for i in range(50)
        }
        assert len(offsets) > 25 and all(0 <= o < START_SPREAD for o in offsets)
        again = first_run(kpi(name="kpi_7", interval="30s"), now)
        assert again == first_run(kpi(name="kpi_7", interval="30s"), now)
