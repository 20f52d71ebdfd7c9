"""A fake clock for unit tests of scheduling and backoff: time moves only when a test says so."""

from __future__ import annotations

import datetime as dt


class FakeClock:
    """Wall time in seconds since the epoch, as time.time() gives it; callable like time.time."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.seconds = start

    def __call__(self) -> float:
        return self.seconds

    def now(self) -> dt.datetime:
        """The same instant as an aware UTC datetime, as APScheduler's triggers take it."""
        return dt.datetime.fromtimestamp(self.seconds, tz=dt.UTC)

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a clock does not run backwards"
        self.seconds += seconds

    def set(self, when: dt.datetime) -> None:
        assert when.timestamp() >= self.seconds, "a clock does not run backwards"
        self.seconds = when.timestamp()
