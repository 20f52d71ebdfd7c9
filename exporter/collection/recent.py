"""The last few hundred polls of one KPI, kept in memory for the status page's charts."""

from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

RECENT_POLLS = 300  # per KPI: 500 KPIs keep 150,000 small tuples at most


class PollPoint(NamedTuple):
    at: float  # wall time of the poll
    total: float | None  # the published samples' sum across series; None: the poll failed
    duration: float  # seconds the poll took


class RecentPolls:
    """A fixed-size ring of poll points: the oldest falls out when a new one comes in."""

    def __init__(self, size: int = RECENT_POLLS) -> None:
        self._points: deque[PollPoint] = deque(maxlen=size)
        self._lock = threading.Lock()  # the poll appends while the page copies

    def record(self, at: float, total: float | None, duration: float) -> None:
        with self._lock:
            self._points.append(PollPoint(at, total, duration))

    def points(self) -> tuple[PollPoint, ...]:
        with self._lock:
            return tuple(self._points)
