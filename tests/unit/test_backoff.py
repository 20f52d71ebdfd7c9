"""Retry backoff of a poll whose database is down: grows, is capped, never overflows, and
skips scheduled runs until its retry time on a fake clock (no sleeping)."""

from __future__ import annotations

from typing import Any

from support.clock import FakeClock

from exporter.collection.polls import MAX_BACKOFF, KpiPoll
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.base import QueryError, Rows
from exporter.spec.model import Spec


class _DownSource:
    """A source whose database is always unreachable."""

    name = "pg"
    dialect = "postgresql"

    def query(self, sql: str, params: Any, timeout: float) -> Rows:
        raise QueryError("connection", "connection refused")

    def close(self) -> None:
        pass


def test_retry_backoff_grows_and_is_capped() -> None:
    spec = Spec.model_validate(
        {
            "databases": {"pg": {"dsn": "postgresql://x@127.0.0.1:1/x"}},
            "kpis": [
                {
                    "name": "fault_down",
                    "type": "gauge",
                    "database": "pg",
                    "interval": "30s",
                    "query": "SELECT 1 AS value",
                }
            ],
        }
    )
    metrics = SelfMetrics()
    poll = KpiPoll(spec, spec.kpis[0], _DownSource(), metrics, lambda snapshot: None)
    waits = []
    for _ in range(1100):  # days of outage: 2**failures must not overflow a float
        assert poll.run(force=True) is False
        assert poll.status.last_run is not None
        waits.append(poll.status.retry_at - poll.status.last_run)
    assert waits[0] == 0  # the first failure retries on the next scheduled poll
    assert waits[1:6] == sorted(waits[1:6]) and waits[5] > waits[1]
    assert max(waits) == MAX_BACKOFF  # capped, never disabled
    assert metrics.database_up.labels("pg")._value.get() == 0
    counted = metrics.query_errors.labels("fault_down", "pg", "connection")._value.get()
    assert counted == 1100


class _FlakySource:
    """Unreachable until `up_at` on the fake clock; records when it was queried."""

    name = "pg"
    dialect = "postgresql"

    def __init__(self, clock: FakeClock, up_at: float) -> None:
        self.clock = clock
        self.up_at = up_at
        self.queried: list[float] = []

    def query(self, sql: str, params: Any, timeout: float) -> Rows:
        self.queried.append(self.clock() - START)
        if self.clock() < self.up_at:
            raise QueryError("connection", "connection refused")
        return Rows(("value",), [(1.0,)])

    def close(self) -> None:
        pass


START = FakeClock().seconds


def test_scheduled_runs_back_off_then_resume_on_recovery() -> None:
    """A 30 s KPI whose database is down: the n-th failure waits 30·(2^(n-1) - 1) s, capped at
    300 s, so of the runs scheduled every 30 s only those at 0, 30, 60, 150, 360, 660, 960 s
    query; the database is back at 1000 s, so 1260 s succeeds and 1290 s runs on schedule."""
    spec = Spec.model_validate(
        {
            "databases": {"pg": {"dsn": "postgresql://x@127.0.0.1:1/x"}},
            "kpis": [
                {"name": "k", "type": "gauge", "database": "pg", "interval": "30s", "query": "q"}
            ],
        }
    )
    clock = FakeClock()
    source = _FlakySource(clock, up_at=START + 1000)
    poll = KpiPoll(spec, spec.kpis[0], source, SelfMetrics(), lambda snapshot: None, clock=clock)
    outcomes = []
    for _ in range(44):  # scheduled runs at 0, 30, ..., 1290 s
        outcomes.append(poll.run())
        clock.advance(30)
    assert source.queried == [0, 30, 60, 150, 360, 660, 960, 1260, 1290]
    assert outcomes.count(True) == 2 and outcomes[-2:] == [True, True]
    assert poll.status.state == "ok" and poll.status.failures == 0
    assert poll.status.last_success == START + 1290
