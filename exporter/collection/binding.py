"""The values a KPI's `:name` placeholders are bound to: one function for the poll and for
`check --connect`, so the check runs the query exactly as the daemon will."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from typing import Any

from exporter.spec.model import Kpi


def bind_params(
    kpi: Kpi,
    used: Set[str],
    now: float,
    *,
    cursor: Any,
    tiebreak: Any,
    last_success: float,
    batch: int,
) -> dict[str, Any]:
    """The value of every placeholder in `used` (the query's), by name."""
    values: dict[str, Any] = {
        "now": now,
        "last_success": last_success,
        "batch": batch,
        "cursor": cursor,
        "tiebreak": tiebreak,
        "settled": settled(kpi, cursor, now),
        **kpi.params,
    }
    return {name: values[name] for name in used}


def settled(kpi: Kpi, cursor: Any, now: float) -> Any:
    """`now - settle`, as a UTC timestamp when the cursor is one (a str cursor is an ISO
    timestamp: an `initial_cursor` from YAML), else as epoch seconds."""
    moment = now - (kpi.settle or 0.0)
    if isinstance(cursor, dt.datetime | str):
        return dt.datetime.fromtimestamp(moment, tz=dt.UTC)
    return moment
