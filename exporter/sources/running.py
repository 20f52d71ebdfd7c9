"""Running queries: the slots that bound how many run at once, and the watchdog that cancels
one at its deadline from the client side."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from logging import WARNING
from types import TracebackType

from exporter.log import event
from exporter.sources.base import QueryError

_REPEAT_EVERY = 1.0  # a cancel that came before the query started is sent again
_REPEATS = 30


class Watchdog:
    """Calls `cancel` once a query has run `after` seconds, then every second until it ends.

    Leaving the `with` block waits for a cancel in flight, so a late cancel can never reach the
    next query on the same connection."""

    def __init__(self, after: float, cancel: Callable[[], object]) -> None:
        self.after = after
        self.fired = False
        self._cancel = cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self.after):
            return
        self.fired = True
        for _ in range(_REPEATS):
            try:
                self._cancel()
            except Exception as exc:  # the query still ends at the driver's own pace
                event(WARNING, "query_cancel_failed", error=type(exc).__name__)
            if self._done.wait(_REPEAT_EVERY):
                return


class QuerySlots:
    """At most `size` queries at once, as a pool of that size would allow."""

    def __init__(self, size: int, wait: float) -> None:
        self.wait = wait
        self._slots = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot while the query runs; none free within `wait` seconds is a pool error."""
        if not self._slots.acquire(timeout=self.wait):
            raise QueryError(
                "pool", f"no free connection slot within {self.wait:g}s (max_connections)"
            )
        try:
            yield
        finally:
            self._slots.release()
