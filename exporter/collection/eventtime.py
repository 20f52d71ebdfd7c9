"""A row's event time in epoch seconds: backfill and verify place rows by it, and the cursor
lag of a KPI with an event time column is now minus the newest one read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from exporter.collection.series import ResultError


def event_seconds(value: Any, column: str) -> float:
    """Epoch seconds from an event time cell: a number, a datetime (naive is UTC) or ISO text."""
    kind = type(value)
    if kind is float or kind is int or kind is Decimal:
        return float(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    if isinstance(value, str):
        try:
            return event_seconds(dt.datetime.fromisoformat(value.strip()), column)
        except ValueError:
            pass
    shown = "NULL" if value is None else f"{kind.__name__} {str(value)[:40]!r}"
    raise ResultError(f"event_time column {column!r} holds {shown}, not a time", column)


def newest_event(rows: Sequence[tuple[Any, ...]], index: int, column: str) -> float | None:
    """The latest event time among `rows` (column `index`); cells that are not a time are
    passed over: the live poll counts such rows (only backfill needs their time)."""
    newest = None
    for row in rows:
        try:
            seconds = event_seconds(row[index], column)
        except ResultError:
            continue
        if newest is None or seconds > newest:
            newest = seconds
    return newest
