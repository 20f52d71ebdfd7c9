"""Schedule: APScheduler jobs for the polls, one thread pool per database, with jitter."""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from exporter.spec import cron
from exporter.spec.model import Kpi

START_SPREAD = 2.0  # first polls are spread over up to this many seconds
MAX_JITTER = 5.0


class SteadyInterval(IntervalTrigger):
    """An interval whose jitter does not accumulate: run k is at start + k·interval plus up to
    `jitter` seconds. (APScheduler adds the jitter to the previous, already jittered, run, so a
    1 s interval with 0.1 s jitter ran every 1.05 s on average: 5% of the polls were lost.)"""

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        if previous_fire_time is not None:
            elapsed = (previous_fire_time - self.start_date).total_seconds()
            slot = math.floor(elapsed / self.interval_length)
            previous_fire_time = self.start_date + dt.timedelta(seconds=slot * self.interval_length)
        return super().get_next_fire_time(previous_fire_time, now)


def trigger_for(kpi: Kpi, start: dt.datetime | None = None) -> BaseTrigger:
    """The KPI's interval or cron trigger, with jitter so equal schedules do not align."""
    if kpi.interval is not None:
        jitter = min(kpi.interval * 0.1, MAX_JITTER)
        return SteadyInterval(
            seconds=kpi.interval, jitter=jitter or None, start_date=start, timezone=dt.UTC
        )
    assert kpi.schedule is not None
    return cron.trigger(kpi.schedule)


def first_run(kpi: Kpi, now: dt.datetime, key: str | None = None) -> dt.datetime:
    """A stable offset per poll (a KPI's name, `name@database` for one of several databases),
    so a restart does not fire every poll at once."""
    spread = min(kpi.period, START_SPREAD)
    fraction = (zlib.crc32((key or kpi.name).encode()) % 1000) / 1000
    return now + dt.timedelta(seconds=spread * fraction)


class Schedule:
    """Runs each poll on its trigger; a poll never overlaps itself, misfires coalesce."""

    def __init__(self) -> None:
        self.scheduler = BackgroundScheduler(timezone=dt.UTC)
        self._executors: dict[str, int] = {}

    def executor(self, database: str, workers: int) -> str:
        """The thread pool of one database: a slow database cannot starve another's polls."""
        alias = f"db:{database}"
        if self._executors.get(alias) != workers:
            if alias in self._executors:
                self.scheduler.remove_executor(alias, shutdown=False)
            self.scheduler.add_executor(ThreadPoolExecutor(max_workers=workers), alias)
            self._executors[alias] = workers
        return alias

    def add(self, key: str, kpi: Kpi, run: Callable[[], object], executor: str) -> None:
        """Schedule one poll under `key` (see `KpiPoll.key`)."""
        first = first_run(kpi, dt.datetime.now(dt.UTC), key)
        self.scheduler.add_job(
            run,
            trigger_for(kpi, first),  # later runs keep the first run's offset
            id=key,
            name=key,
            executor=executor,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(kpi.period)),
            next_run_time=first,
            replace_existing=True,
        )

    def remove(self, name: str) -> None:
        if self.scheduler.get_job(name) is not None:
            self.scheduler.remove_job(name)

    def next_run(self, name: str) -> dt.datetime | None:
        job = self.scheduler.get_job(name)
        return job.next_run_time if job is not None else None

    def start(self) -> None:
        self.scheduler.start()

    def pause(self) -> None:
        """No new poll starts; running ones go on."""
        if self.scheduler.running:
            self.scheduler.pause()

    def stop(self, wait: bool) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
