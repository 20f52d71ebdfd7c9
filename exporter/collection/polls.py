"""One KPI's poll: run its query, turn rows into series (cursor KPIs accumulate), publish."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from logging import INFO, WARNING
from typing import Any

from exporter.collection.binding import bind_params
from exporter.collection.eventtime import newest_event
from exporter.collection.recent import RecentPolls
from exporter.collection.series import ResultError, Shape, render_plain
from exporter.collection.state import CursorState, StateStore, state_key
from exporter.collection.totals import Totals
from exporter.conventions import Reason
from exporter.log import event
from exporter.serving.selfmetrics import SelfMetrics
from exporter.serving.snapshot import Snapshot
from exporter.sources.base import QueryError, Rows, Source
from exporter.spec.model import Kpi, Spec
from exporter.spec.params import placeholders

MAX_BACKOFF = 300.0
MAX_BATCHES_PER_POLL = 1000


@dataclass
class PollStatus:
    """What the status page and /ready show about one KPI; written only by its poll."""

    state: str = "pending"  # pending | ok | failed
    last_run: float | None = None
    last_duration: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_reason: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    series: int = 0
    recent: RecentPolls = field(default_factory=RecentPolls)


def complete_rows(
    kpi: Kpi, rows: Sequence[tuple[Any, ...]], cursor_index: int, tiebreak_index: int | None
) -> Sequence[tuple[Any, ...]]:
    """Rows safe to apply now: in cursor order, and without a tie cut by the batch limit."""
    previous = None
    for row in rows:
        value = row[cursor_index]
        if value is None:
            raise ResultError("the cursor column is NULL in a row", kpi.cursor)
        if previous is not None:
            try:
                if value < previous:
                    raise ResultError(
                        "rows are not in cursor order: the query needs ORDER BY its cursor",
                        kpi.cursor,
                    )
            except TypeError:
                raise ResultError("the cursor column mixes types", kpi.cursor) from None
        previous = value
    if len(rows) < kpi.batch or tiebreak_index is not None or not rows:
        return rows
    # A full batch may have cut a run of equal cursor values: leave that run for the next
    # fetch, which reads `> :cursor` from the value before it.
    last = rows[-1][cursor_index]
    end = len(rows)
    while end > 0 and rows[end - 1][cursor_index] == last:
        end -= 1
    if end == 0:
        raise ResultError(
            f"all {len(rows)} rows of a batch share one cursor value: "
            "set 'tiebreak' or a larger 'batch'",
            kpi.cursor,
        )
    return rows[:end]


def poll_key(kpi: Kpi, database: str) -> str:
    """A poll's name for the schedule, the published parts and the status page: the KPI's
    name, with its database after '@' when the KPI spans databases."""
    return f"{kpi.name}@{database}" if kpi.spans_databases else kpi.name


class PollFailed(Exception):
    """A poll failed; carries the reason label and a message safe to log."""

    def __init__(self, reason: Reason | None, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.column = column


class KpiPoll:
    """Polls one KPI on its schedule; never runs twice at once (the scheduler ensures it)."""

    def __init__(
        self,
        spec: Spec,
        kpi: Kpi,
        source: Source,
        metrics: SelfMetrics,
        publish: Callable[[Snapshot], None],
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        database: str | None = None,
    ) -> None:
        self.kpi = kpi
        self.clock = clock  # wall time in seconds; tests pass a fake one to drive the backoff
        # a KPI on several databases has a poll per database; None: the KPI's only one
        self.database = database if database is not None else spec.databases_of(kpi)[0]
        self.key = poll_key(kpi, self.database)
        self.state_key = state_key(kpi.name, self.database)
        self.metric = spec.metric_name(kpi)
        self.const_labels = spec.series_labels(kpi, self.database)
        self.source = source
        self.metrics = metrics
        self.publish = publish
        self.store = store
        self.used = placeholders(kpi.query)
        self.status = PollStatus()
        self._lock = threading.Lock()  # `once` and the scheduler may both call run()
        self._outcome_lock = threading.RLock()  # orders results against retire()
        self._retired = False
        self._totals: Totals | None = None
        self._shape: Shape | None = None
        self._cursor: Any = kpi.initial_cursor
        self._tiebreak: Any = 0
        self._newest: float | None = None  # the newest event time read (KPIs with one)
        self._rows = 0
        self._stored: tuple[CursorState | None] | None = None  # None: not read yet
        self._legacy = False  # the stored state is under the KPI's bare name (older versions)
        self._restored = False
        self._positioned = kpi.start == "earliest"

    def _log(self, level: int, name: str, **fields: Any) -> None:
        event(level, name, kpi=self.kpi.name, database=self.database, **fields)

    def run(self, force: bool = False) -> bool:
        """One poll; returns True on success. Failures are recorded, never raised."""
        with self._lock:
            now = self.clock()
            if not force and now < self.status.retry_at:
                return False  # backing off after failures
            started = time.monotonic()
            try:
                snapshot = self._poll(now)
            except PollFailed as failure:
                self._emit(self._failed, now, started, failure)
                return False
            except Exception as exc:  # a bug must not kill the scheduler thread
                self._emit(self._failed, now, started, PollFailed(None, f"internal error: {exc!r}"))
                return False
            self._emit(self._succeeded, now, started, snapshot)
            return True

    def retire(self) -> None:
        """A reload replaced or removed this poll: from now on nothing it records reaches the
        publication, the self-metrics or the state store, so a run still in flight cannot
        bring back what the reload withdrew or write over its successor's state. Waits only
        for a result (or a batch's state) being recorded right now."""
        with self._outcome_lock:
            self._retired = True

    def _emit(self, record: Callable[..., object], *args: Any) -> None:
        """record(*args), unless the poll is retired."""
        with self._outcome_lock:
            if not self._retired:
                record(*args)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a running poll to finish."""
        if timeout <= 0 or not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True

    def _params(self, now: float) -> dict[str, Any]:
        return bind_params(
            self.kpi,
            self.used,
            now,
            cursor=self._cursor,
            tiebreak=self._tiebreak,
            last_success=self.status.last_success or 0.0,
            batch=self.kpi.batch,
        )

    def _query(self, params: dict[str, Any]) -> Rows:
        try:
            rows = self.source.query(self.kpi.query, params, self.kpi.timeout)
        except QueryError as exc:
            if exc.reason == "connection":
                self.metrics.database_up.labels(self.database).set(0)
            raise PollFailed(exc.reason, exc.message) from None
        self.metrics.database_up.labels(self.database).set(1)
        self._emit(self._observe_duration, rows.elapsed)
        return rows

    def _poll(self, now: float) -> Snapshot:
        if self.kpi.cursor is None:
            rows = self._query(self._params(now))
            try:
                snapshot, skipped = render_plain(
                    self.kpi, self.metric, self.const_labels, rows, now
                )
            except ResultError as exc:
                raise PollFailed("result", exc.message, exc.column) from None
            if skipped:
                self._count("result")
                self._log(
                    WARNING,
                    "null_values_skipped",
                    column=self.kpi.value_column,
                    rows=skipped,
                )
            return snapshot
        return self._poll_cursor(now)

    # -- cursor KPIs -------------------------------------------------------------------------

    def load_state(self) -> None:
        """Read a cursor KPI's stored state, changing nothing: a reload does this while it
        builds polls it may still discard, so an unreadable state refuses the reload."""
        if self.kpi.cursor is not None and self.store is not None and self._stored is None:
            state = self.store.load(self.state_key)
            if state is None and not self.kpi.spans_databases:
                state = self.store.load(self.kpi.name)
                self._legacy = state is not None
            self._stored = (state,)

    def restore(self) -> None:
        """Put the stored state in force: publish its totals before any query answers, or
        reset it when the KPI changed what it accumulates."""
        if self.kpi.cursor is None or self.store is None or self._restored:
            return
        self.load_state()
        assert self._stored is not None
        state = self._stored[0]
        if self._legacy and self.store.adopt(self.kpi.name, self.state_key):
            self._log(INFO, "state_adopted")
        fingerprint = self.kpi.fingerprint()
        if state is not None and state.fingerprint != fingerprint:
            self._log(
                WARNING,
                "state_reset",
                why="query, labels, buckets or cursor changed since the state was written",
            )
            self.store.reset(self.state_key)
            state = None
        if state is None:
            self._totals = Totals(self.kpi)
        else:
            self._totals = Totals(self.kpi, state.series)
            # counters continue from their stored totals even before the database answers
            self._shape = Shape.for_rendering(self.kpi, self.metric, self.const_labels)
            self._emit(self._publish, self._totals.render(self._shape, self.clock()))
            self._cursor, self._tiebreak, self._rows = state.cursor, state.tiebreak, state.rows
            self._positioned = True
            self._log(INFO, "state_restored", cursor=self._cursor, series=len(state.series))
        self._restored = True

    def _poll_cursor(self, now: float) -> Snapshot:
        self.restore()
        assert self._totals is not None and self.store is not None
        rows_before = self._rows
        try:
            if not self._positioned:
                self._catch_up(now, count=False)
                self._positioned = True
                self._log(INFO, "cursor_positioned", cursor=self._cursor)
            self._catch_up(now, count=True)
        except PollFailed:
            if self._rows != rows_before and self._shape is not None:
                self._emit(self._publish, self._totals.render(self._shape, now))  # as stored
            raise
        finally:
            self._emit(self._lag, now)
        assert self._shape is not None
        return self._totals.render(self._shape, now)

    def _catch_up(self, now: float, count: bool) -> None:
        """Fetch batches until caught up; each applied batch is stored before it is published."""
        assert self._totals is not None and self.store is not None
        kpi = self.kpi
        assert kpi.cursor is not None
        for _ in range(MAX_BATCHES_PER_POLL):
            rows = self._query(self._params(now))
            try:
                shape = self._shape = Shape(kpi, self.metric, self.const_labels, rows)
                cursor_index = shape.column(kpi.cursor, "cursor")
                tiebreak_index = shape.column(kpi.tiebreak, "tiebreak") if kpi.tiebreak else None
                kept = complete_rows(kpi, rows.rows, cursor_index, tiebreak_index)
                staged = self._totals.stage(shape, kept, now) if count else {}
            except ResultError as exc:
                raise PollFailed("result", exc.message, exc.column) from None
            self._note_newest(shape, kept)
            if kept:
                cursor = kept[-1][cursor_index]
                tiebreak = kept[-1][tiebreak_index] if tiebreak_index is not None else 0
                applied = len(kept) if count else 0
                with self._outcome_lock:
                    if self._retired:  # its successor owns the stored state now
                        raise PollFailed(None, "replaced by a reload")
                    try:
                        self.store.save(
                            self.state_key,
                            kpi.fingerprint(),
                            cursor,
                            tiebreak,
                            self._rows + applied,
                            staged,
                        )
                    except Exception as exc:
                        self.metrics.state_write_errors.inc()
                        raise PollFailed(None, f"state write failed: {exc}") from None
                self._totals.merge(staged)
                self._cursor, self._tiebreak = cursor, tiebreak
                self._rows += applied
                if applied:
                    self._emit(self._count_rows, applied)
            if len(rows.rows) < kpi.batch:
                return
        self._log(WARNING, "catch_up_incomplete", batches=MAX_BATCHES_PER_POLL)

    def _note_newest(self, shape: Shape, kept: Sequence[tuple[Any, ...]]) -> None:
        """Keep the newest event time read, for the lag (a result without the event time
        column leaves it alone: only backfill and verify need that column)."""
        column = self.kpi.event_time_column
        if column is None or not kept or column not in shape.index:
            return
        newest = newest_event(kept, shape.index[column], column)
        if newest is not None and (self._newest is None or newest > self._newest):
            self._newest = newest

    def _lag(self, now: float) -> None:
        """Now minus the newest event time read (a KPI with `event_time` or a timestamp
        cursor), else minus the cursor itself when it is a time (a datetime, or epoch seconds
        with `settle`); nothing before the first row."""
        cursor, newest = self._cursor, self._newest
        if newest is None and isinstance(cursor, dt.datetime):
            newest = (cursor if cursor.tzinfo else cursor.replace(tzinfo=dt.UTC)).timestamp()
        elif newest is None and self.kpi.settle is not None and isinstance(cursor, int | float):
            newest = float(cursor) if cursor > 0 else None
        if newest is not None:
            self.metrics.cursor_lag.labels(self.kpi.name, self.database).set(max(0.0, now - newest))

    # -- outcome -----------------------------------------------------------------------------

    # Each self-metric write is one call under _emit: `labels()` alone already creates a series.

    def _count(self, reason: Reason) -> None:
        self._emit(
            lambda: self.metrics.query_errors.labels(self.kpi.name, self.database, reason).inc()
        )

    def _observe_duration(self, seconds: float) -> None:
        self.metrics.query_duration.labels(self.kpi.name, self.database).observe(seconds)

    def _count_rows(self, rows: int) -> None:
        self.metrics.rows_processed.labels(self.kpi.name, self.database).inc(rows)

    def _publish(self, snapshot: Snapshot) -> None:
        """Publish as this poll's part of the KPI's series (one part per database)."""
        self.publish(replace(snapshot, part=self.key))

    def _succeeded(self, now: float, started: float, snapshot: Snapshot) -> None:
        self._publish(snapshot)
        status = self.status
        if status.state == "failed":
            self._log(INFO, "poll_recovered", after_failures=status.failures)
        status.state = "ok"
        status.last_run = now
        status.last_duration = time.monotonic() - started
        status.last_success = self.clock()
        status.last_error = status.last_reason = None
        status.failures = 0
        status.retry_at = 0.0
        status.series = snapshot.series
        status.recent.record(now, snapshot.total, status.last_duration)
        self.metrics.kpi_up.labels(self.kpi.name, self.database).set(1)
        self.metrics.last_success.labels(self.kpi.name, self.database).set(status.last_success)
        self.metrics.series.labels(self.kpi.name, self.database).set(snapshot.series)

    def _failed(self, now: float, started: float, failure: PollFailed) -> None:
        if failure.reason is not None:
            self._count(failure.reason)
        status = self.status
        status.state = "failed"
        status.last_run = now
        status.last_duration = time.monotonic() - started
        status.last_error = failure.message
        status.last_reason = failure.reason or "internal"
        status.recent.record(now, None, status.last_duration)
        status.failures += 1
        # the exponent is bounded: 2**1024 would overflow a float after days of failures
        doublings = min(status.failures - 1, 32)
        extra = min(self.kpi.period * (2**doublings - 1), MAX_BACKOFF)
        status.retry_at = now + extra
        self.metrics.kpi_up.labels(self.kpi.name, self.database).set(0)
        self._log(
            WARNING,
            "poll_failed",
            reason=status.last_reason,
            column=failure.column,
            error=failure.message,
            failures=status.failures,
            retry_in=round(extra, 1),
        )
