"""A cron KPI's schedule as standard cron reads it (0 and 7 = Sunday), and its period: the
longest gap between its fire times, over a full cycle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from support.kpis import kpi

from exporter.collection.scheduling import trigger_for
from exporter.generation.rule_files import ALERTS_FILE, render_files
from exporter.spec.loading import SpecError, load_spec

HOUR = 3600
DAY = 24 * HOUR

# expected gaps worked out by hand (cron numbers weekdays from 0 = Sunday, 7 is Sunday too)
PERIODS = [
    ("*/5 * * * *", 300),
    ("* * * * *", 60),
    ("7 */6 * * *", 6 * HOUR),
    ("0 3 * * *", DAY),
    ("30 8,17 * * *", 15 * HOUR),  # 17:30 to 08:30 the next day
    ("0 9 * * mon-fri", 72 * HOUR),  # Friday 09:00 to Monday 09:00
    ("0 9 * * 1-5", 72 * HOUR),
    ("0 9 * * 0-4", 72 * HOUR),  # Thursday 09:00 to Sunday 09:00
    ("0 0 * * 7", 7 * DAY),
    ("0 9 * * 5-7", 5 * DAY),  # Sunday 09:00 to Friday 09:00
    ("0 9 * * */2", 2 * DAY),  # Sunday, Tuesday, Thursday, Saturday
    ("*/10 9-17 * * mon-fri", 72 * HOUR - 8 * HOUR - 50 * 60),  # Fri 17:50 to Mon 09:00
    ("0 0 1 * *", 31 * DAY),  # the longest month
    ("0 0 * 1-11 *", 32 * DAY),  # November 30 to January 1
    ("0 0 29 2 *", (4 * 365 + 1) * DAY),  # leap day to leap day
    ("0 0 13 * fri", 427 * DAY),  # Friday the 13th: at most 14 months apart
]


MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
assert MONDAY.strftime("%A") == "Monday"


def fire_days(schedule: str, count: int) -> list[str]:
    """The weekday names of the next `count` fire times from MONDAY at 00:00 of the trigger
    the daemon schedules the KPI with."""
    trigger = trigger_for(kpi(schedule=schedule))
    days: list[str] = []
    moment = trigger.get_next_fire_time(None, MONDAY)
    for _ in range(count):
        assert moment is not None
        days.append(moment.strftime("%a"))
        moment = trigger.get_next_fire_time(moment, moment + dt.timedelta(seconds=1))
    return days


def test_weekdays_one_to_five_are_monday_to_friday() -> None:
    trigger = trigger_for(kpi(schedule="0 9 * * 1-5"))
    first = trigger.get_next_fire_time(None, MONDAY)
    assert first == dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    assert fire_days("0 9 * * 1-5", 6) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]


@pytest.mark.parametrize("schedule", ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN"])
def test_zero_and_seven_are_sunday(schedule: str) -> None:
    trigger = trigger_for(kpi(schedule=schedule))
    assert trigger.get_next_fire_time(None, MONDAY) == dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    assert fire_days(schedule, 2) == ["Sun", "Sun"]


@pytest.mark.parametrize(
    ("day_of_week", "days"),
    [
        ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("1,3,5", ["Mon", "Wed", "Fri"]),
        ("1-5/2", ["Mon", "Wed", "Fri"]),
        ("*/2", ["Tue", "Thu", "Sat", "Sun"]),  # 0, 2, 4, 6
        ("5-7", ["Fri", "Sat", "Sun"]),
        ("fri-sun", ["Fri", "Sat", "Sun"]),
        ("sat,0", ["Sat", "Sun"]),
        ("0-6", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_day_of_week_ranges_steps_and_lists(day_of_week: str, days: list[str]) -> None:
    assert fire_days(f"0 0 * * {day_of_week}", len(days)) == days


@pytest.mark.parametrize(
    ("day_of_week", "problem"),
    [
        ("8", "day of week '8': '8' is not a day (0-7, 0 and 7 are Sunday, or sun-sat)"),
        ("5-1", "day of week '5-1': the range runs backwards"),
        ("1/2", "day of week '1/2': a step needs a range (a-b/n) or * (*/n)"),
        ("*/0", "day of week '*/0': the step must be a positive number"),
    ],
)
def test_a_bad_day_of_week_is_refused(tmp_path: Path, day_of_week: str, problem: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "databases: {app: {dsn: 'sqlite:///x.db'}}\n"
        "kpis:\n"
        f"  - {{name: k, type: gauge, database: app, schedule: '0 0 * * {day_of_week}',"
        " query: SELECT 1}\n"
    )
    with pytest.raises(SpecError) as error:
        load_spec([path])
    assert f"invalid cron expression '0 0 * * {day_of_week}': {problem}" in str(
        error.value.problems[0]
    )


@pytest.mark.parametrize(("schedule", "seconds"), PERIODS)
def test_period_is_the_longest_gap(schedule: str, seconds: int) -> None:
    assert kpi(schedule=schedule).period == seconds


def test_a_schedule_that_never_fires_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "databases: {app: {dsn: 'sqlite:///x.db'}}\n"
        "kpis:\n"
        "  - {name: k, type: gauge, database: app, schedule: '0 0 30 2 *', query: SELECT 1}\n"
    )
    with pytest.raises(SpecError) as error:
        load_spec([path])
    assert "kpis[0].schedule: invalid cron expression '0 0 30 2 *': the schedule never fires" in (
        str(error.value.problems[0])
    )


def test_a_daily_kpi_is_stale_after_three_days_not_three_minutes(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "databases: {app: {dsn: 'sqlite:///x.db'}}\n"
        "kpis:\n"
        "  - {name: nightly, type: gauge, database: app, schedule: '0 3 * * *', query: SELECT 1}\n"
    )
    files = render_files(load_spec([path]).spec)
    groups = yaml.safe_load(files[ALERTS_FILE])["groups"]
    rules = [r for g in groups for r in g["rules"] if "alert" in r]
    stale = next(r for r in rules if r["alert"] == "KpiExporterKpiStale")
    assert stale["expr"].endswith(f" > {3 * DAY}")
    assert stale["labels"]["poll_interval"] == "1d"
    failing = next(r for r in rules if r["alert"] == "KpiExporterKpiFailing")
    assert failing["for"] == "2d"  # two failed polls in a row
