"""Schedules on a real scheduler thread: a slow poll never overlaps itself."""

from __future__ import annotations

import threading
import time

from conftest import wait_until
from support.kpis import kpi

from exporter.collection.scheduling import (
    Schedule,
)


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
        schedule.add("slow", kpi(name="slow", interval="100ms"), slow, executor)
        schedule.start()
        try:
            wait_until(lambda: runs >= 3, 20, 0.05, what="3 runs of the slow poll")
        finally:
            schedule.stop(wait=True)
        assert runs >= 3 and most == 1
