"""Retry backoff of a poll whose database is down: grows, is capped, never overflows."""

from __future__ import annotations

from typing import Any

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
