"""The period of a cron schedule: the longest gap between its fire times, from APScheduler's
own CronTrigger (what the daemon runs), in UTC as the daemon schedules it."""

from __future__ import annotations

import datetime as dt
import functools
import itertools

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

DAY = 86400
# A Monday. From 1901 to 2099 weekdays and leap years repeat every 28 years, so the firing days
# of a cron expression do too (the day of month and month alone repeat every 4 years, the day
# of week alone every week); one such cycle from here holds every gap between firing days.
CYCLE_START = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
MAX_FIRING_DAYS = 2000  # bounds the work (one trigger call a firing day, ~0.1 ms each)


def trigger(expression: str) -> CronTrigger:
    """The trigger the daemon schedules a `schedule:` KPI with."""
    return CronTrigger.from_crontab(expression, timezone=dt.UTC)


@functools.lru_cache(maxsize=1024)
def cron_period(expression: str) -> float:
    """Seconds of the longest gap between two fire times of `expression`.

    The hour and minute fields give the same times on every firing day (UTC has no DST), so
    the longest gap is the longest between two times of a day, or from the last time of a
    firing day to the first of the next. Raises ValueError for an expression that never fires.
    """
    cron = trigger(expression)
    fields = {field.name: str(field) for field in cron.fields}
    times = _times_of_day(fields["hour"], fields["minute"])
    within_day = max((b - a for a, b in itertools.pairwise(times)), default=0)
    day_fields = (fields["month"], fields["day"], fields["day_of_week"])
    if day_fields == ("*", "*", "*"):
        days = 1
    elif day_fields[:2] == ("*", "*"):
        days = _longest_day_gap(cron, dt.timedelta(days=7))
    elif day_fields[2] == "*":
        days = _longest_day_gap(cron, _after_years(4))
    else:
        days = _longest_day_gap(cron, _after_years(28))
    return float(max(within_day, days * DAY - (times[-1] - times[0])))


def _after_years(years: int) -> dt.timedelta:
    return CYCLE_START.replace(year=CYCLE_START.year + years) - CYCLE_START


def _fire_times(cron: BaseTrigger, span: dt.timedelta) -> list[dt.datetime]:
    """The fire times within `span` from CYCLE_START (a few dozen at most: see the callers)."""
    times: list[dt.datetime] = []
    end = CYCLE_START + span
    moment = cron.get_next_fire_time(None, CYCLE_START)
    while moment is not None and moment < end:
        times.append(moment)
        moment = cron.get_next_fire_time(moment, moment + dt.timedelta(seconds=1))
    return times


def _times_of_day(hour: str, minute: str) -> list[int]:
    """Seconds after midnight of every fire time in a firing day, in order: the hours times
    the minutes, each listed by its own trigger (at most 24 and 60 trigger calls)."""
    hours = [t.hour for t in _fire_times(CronTrigger(hour=hour, timezone=dt.UTC), dt.timedelta(1))]
    minutes = [
        t.minute
        for t in _fire_times(CronTrigger(minute=minute, timezone=dt.UTC), dt.timedelta(hours=1))
    ]
    return sorted(h * 3600 + m * 60 for h in hours for m in minutes)


def _longest_day_gap(cron: CronTrigger, cycle: dt.timedelta) -> int:
    """Days of the longest gap between consecutive firing days over one `cycle` (and up to
    the first firing day after it), or over the first MAX_FIRING_DAYS firing days."""
    first = cron.get_next_fire_time(None, CYCLE_START)
    if first is None:
        raise ValueError("the schedule never fires")
    end = CYCLE_START + cycle
    day = first.date()
    longest = 0
    for _ in range(MAX_FIRING_DAYS):
        midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        following = cron.get_next_fire_time(None, midnight)
        if following is None:  # no fire time before APScheduler's year 9999
            break
        longest = max(longest, (following.date() - day).days)
        day = following.date()
        if following >= end:
            break
    if longest == 0:
        raise ValueError("the schedule fires only once")
    return longest
