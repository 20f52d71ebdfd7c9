"""Schedules: triggers, jitter, spread start, and no overlapping runs of one KPI."""

from __future__ import annotations

import datetime as dt
import threading
import time

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from exporter.collection.scheduling import (
    MAX_JITTER,
    START_SPREAD,
    Schedule,
    first_run,
    trigger_for,
)
from exporter.spec.model import Kpi


def kpi(**fields: object) -> Kpi:
    base: dict[str, object] = {"name": "k", "type": "gauge", "database": "app", "query": "SELECT 1"}
    base.update(fields)
    return Kpi.model_validate(base)


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


class TestSchedule:
    def test_a_slow_poll_never_overlaps_itself(self) -> None:
        running = 0
        most = 0
        runs = 0
        lock = threading.Lock()

        def slow() -> None:
            nonlocal running, most, runs
            with lock:
                running += 1
                runs += 1
                most = max(most, running)
            time.sleep(0.5)  # five times its interval
            with lock:
                running -= 1

        schedule = Schedule()
        executor = schedule.executor("app", workers=4)
        schedule.add(kpi(name="slow", interval="100ms"), slow, executor)
        schedule.start()
        try:
            deadline = time.monotonic() + 20
            while runs < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            schedule.stop(wait=True)
        assert runs >= 3 and most == 1
