"""A `schedule:` as standard cron means it, as an APScheduler CronTrigger (what the daemon runs),
and its period: the longest gap between its fire times, in UTC as the daemon schedules it."""

from __future__ import annotations

import datetime as dt
import functools
import itertools

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

DAY = 86400
# Standard cron (crontab(5)) numbers the days of the week from 0 = Sunday, and 7 is Sunday too;
# APScheduler 3 numbers them from 0 = Monday, so its numbers cannot be passed through.
CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
APSCHEDULER_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A Monday. From 1901 to 2099 weekdays and leap years repeat every 28 years, so the firing days
# of a cron expression do too (the day of month and month alone repeat every 4 years, the day
# of week alone every week); one such cycle from here holds every gap between firing days.
CYCLE_START = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
MAX_FIRING_DAYS = 2000  # bounds the work (one trigger call a firing day, ~0.1 ms each)


def trigger(expression: str) -> CronTrigger:
    """The trigger the daemon schedules a `schedule:` KPI with: minute, hour, day of month,
    month and day of week, the last read as standard cron does."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields, got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=apscheduler_day_of_week(day_of_week),
        timezone=dt.UTC,
    )


def apscheduler_day_of_week(field: str) -> str:
    """A standard cron day-of-week field (numbers 0-7 or names sun-sat, with ranges, steps and
    lists) as APScheduler's: `*` for every day, otherwise a list of day names."""
    days: set[int] = set()
    for element in field.lower().split(","):
        days |= _cron_days(element)
    if len(days) == 7:
        return "*"
    return ",".join(name for name in APSCHEDULER_WEEKDAYS if CRON_WEEKDAYS.index(name) in days)


def _cron_days(element: str) -> set[int]:
    """The days (0 = Sunday ... 6 = Saturday) one element of a cron day-of-week list names."""
    span, _, step_text = element.partition("/")
    first_text, dash, last_text = span.partition("-")
    if span == "*":
        first, last = 0, 7
    else:
        first = _cron_day(first_text, element)
        # a range ending on Sunday by name (`fri-sun`) ends on 7, as `5-7` does
        last = _cron_day(last_text, element) if dash else first
        if last_text == "sun" and first > 0:
            last = 7
    if first > last:
        raise ValueError(f"day of week {element!r}: the range runs backwards")
    step = 1
    if step_text:
        if not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"day of week {element!r}: the step must be a positive number")
        if not dash and span != "*":
            raise ValueError(f"day of week {element!r}: a step needs a range (a-b/n) or * (*/n)")
        step = int(step_text)
    return {day % 7 for day in range(first, last + 1, step)}


def _cron_day(text: str, element: str) -> int:
    if text in CRON_WEEKDAYS:
        return CRON_WEEKDAYS.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text)
    raise ValueError(
        f"day of week {element!r}: {text!r} is not a day (0-7, 0 and 7 are Sunday, or sun-sat)"
    )


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
