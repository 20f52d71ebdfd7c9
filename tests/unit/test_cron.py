"""A cron KPI's period: the longest gap between its fire times, over a full cycle."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.kpis import kpi

from exporter.generation.rule_files import ALERTS_FILE, render_files
from exporter.spec.loading import SpecError, load_spec

HOUR = 3600
DAY = 24 * HOUR

# expected gaps worked out by hand (APScheduler numbers weekdays from 0 = Monday)
PERIODS = [
    ("*/5 * * * *", 300),
    ("* * * * *", 60),
    ("7 */6 * * *", 6 * HOUR),
    ("0 3 * * *", DAY),
    ("30 8,17 * * *", 15 * HOUR),  # 17:30 to 08:30 the next day
    ("0 9 * * mon-fri", 72 * HOUR),  # Friday 09:00 to Monday 09:00
    ("0 9 * * 0-4", 72 * HOUR),
    ("*/10 9-17 * * mon-fri", 72 * HOUR - 8 * HOUR - 50 * 60),  # Fri 17:50 to Mon 09:00
    ("0 0 1 * *", 31 * DAY),  # the longest month
    ("0 0 * 1-11 *", 32 * DAY),  # November 30 to January 1
    ("0 0 29 2 *", (4 * 365 + 1) * DAY),  # leap day to leap day
    ("0 0 13 * fri", 427 * DAY),  # Friday the 13th: at most 14 months apart
]


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
