"""Daemon: the sources, polls, schedule, state and publication of a spec; reload swaps them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from logging import INFO, WARNING
from pathlib import Path
from typing import Any

from exporter.collection.polls import KpiPoll, poll_key
from exporter.collection.scheduling import Schedule
from exporter.collection.state import StateError, StateStore, split_key
from exporter.log import event
from exporter.serving.publication import Publication
from exporter.serving.selfmetrics import SelfMetrics
from exporter.sources.base import QueryError, Source
from exporter.sources.registry import open_source
from exporter.sources.rotation import DsnFileSource
from exporter.spec.loading import LoadedSpec, SpecError, load_spec
from exporter.spec.model import Database, Kpi, Spec

CANCEL_WAIT = 5.0  # seconds polls get to wind down after their queries were cancelled


@dataclass(frozen=True)
class _Build:
    """A spec's sources, polls and state store, built but not yet in force."""

    spec: Spec
    sources: dict[str, Source]
    polls: dict[str, KpiPoll]  # every (KPI, database) poll by key: kept running ones and `built`
    built: list[KpiPoll]  # the new polls, not yet scheduled
    store: StateStore | None
    rotated: dict[str, tuple[str, Source]]  # unchanged databases whose dsn_file says another DSN


def _pairs(spec: Spec) -> list[tuple[Kpi, str]]:
    """Every (KPI, database) the spec polls: a KPI on several databases is polled on each."""
    return [(kpi, database) for kpi in spec.kpis for database in spec.databases_of(kpi)]


def _same_connection(old: Database | None, new: Database) -> bool:
    """The same pool serves both: only the database's constant labels differ, if anything."""
    return old is not None and old.model_copy(update={"labels": {}}) == new.model_copy(
        update={"labels": {}}
    )


class Daemon:
    """Everything a running exporter holds; the HTTP layer reads it through a few methods."""

    def __init__(
        self,
        loaded: LoadedSpec,
        configs: Sequence[Path] = (),
        narrow: Callable[[Spec], Spec] | None = None,
    ) -> None:
        self.configs = list(configs)
        self._narrow = narrow  # e.g. a shard's share of the KPIs, applied to every (re)load
        self.metrics = SelfMetrics()
        self.publication = Publication(self.metrics.render)
        self.schedule = Schedule()
        self.loaded = loaded
        self.started = time.time()
        self.sources: dict[str, Source] = {}
        self._source_config: dict[str, Database] = {}
        self.polls: dict[str, KpiPoll] = {}
        self.store: StateStore | None = None
        self._reload_lock = threading.Lock()
        self.last_reload_error: str | None = None
        self._apply(loaded.spec)
        self.metrics.loaded(loaded.digest)

    @property
    def spec(self) -> Spec:
        return self.loaded.spec

    def _apply(self, spec: Spec) -> None:
        """Make the running polls match `spec`: keep the unchanged, restart the changed.

        Build-then-swap: every new source, poll and the state store are built first; only
        when all of them were built does anything running change. A failure closes what was
        built and raises, and the running spec goes on untouched.
        """
        if self._narrow is not None:
            spec = self._narrow(spec)
        self._swap(self._build(spec))

    def _build(self, spec: Spec) -> _Build:
        opened: dict[str, Source] = {}
        rotated: dict[str, tuple[str, Source]] = {}
        store = self.store
        try:
            if store is None and any(k.cursor for k in spec.kpis):
                store = StateStore(spec.exporter.state_dir)
            for name, database in spec.databases.items():
                if name not in self.sources or not _same_connection(
                    self._source_config.get(name), database
                ):
                    opened[name] = open_source(name, database, spec.exporter.pool_timeout)
                elif isinstance(current := self.sources[name], DsnFileSource):
                    fresh = current.reread()  # the same config, maybe a rotated password
                    if fresh is not None:
                        rotated[name] = fresh
            sources = {name: opened.get(name) or self.sources[name] for name in spec.databases}
            polls: dict[str, KpiPoll] = {}
            built: list[KpiPoll] = []
            for kpi, name in _pairs(spec):
                key = poll_key(kpi, name)
                running = self.polls.get(key)
                if running is not None and self._unchanged(running, spec, kpi):
                    polls[key] = running
                    continue
                poll = KpiPoll(
                    spec,
                    kpi,
                    sources[name],
                    self.metrics,
                    self.publication.publish,
                    store,
                    database=name,
                )
                poll.load_state()
                polls[key] = poll
                built.append(poll)
        except BaseException:
            for source in [*opened.values(), *(fresh for _, fresh in rotated.values())]:
                source.close()
            if store is not None and store is not self.store:
                store.close()
            raise
        return _Build(spec, sources, polls, built, store, rotated)

    def _swap(self, new: _Build) -> None:
        """Put a built spec in force; nothing here can fail on bad input."""
        spec = new.spec
        polled = {(poll.kpi.name, poll.database) for poll in new.polls.values()}
        for name, poll in self.polls.items():
            if new.polls.get(name) is poll:
                continue
            self.schedule.remove(name)
            poll.retire()  # a run in flight now records nothing: withdrawn stays withdrawn
            successor = new.polls.get(name)
            same_series = (
                successor is not None
                and (successor.kpi.labels, successor.kpi.type) == (poll.kpi.labels, poll.kpi.type)
                and successor.metric == poll.metric
                and successor.const_labels == poll.const_labels
            )
            if not same_series:
                self.publication.withdraw(name)
            if (poll.kpi.name, poll.database) not in polled:  # no stale self-metric series
                self.metrics.forget(poll.kpi.name, poll.database)
        retired = [s for name, s in self.sources.items() if new.sources.get(name) is not s]
        for name, fresh in new.rotated.items():
            source = new.sources[name]
            assert isinstance(source, DsnFileSource)
            source.install(fresh, why="reload")  # its polls go on, on the new connections
        for name in set(self._source_config) - set(spec.databases):
            self.metrics.forget_database(name)
        self.sources = new.sources
        self._source_config = dict(spec.databases)
        self.store = new.store
        self.polls = new.polls
        self.metrics.declare((kpi.name, database) for kpi, database in _pairs(spec))
        for poll in new.built:
            database = spec.databases[poll.database]
            executor = self.schedule.executor(poll.database, database.max_connections + 2)
            self.schedule.add(poll.key, poll.kpi, poll.run, executor)
            poll.restore()  # stored totals are published before any query answers
        for source in retired:
            source.close()
        if self.store is not None:
            kept = (poll.state_key for poll in self.polls.values() if poll.kpi.cursor)
            for key in self.store.keep_only(kept):
                kpi, where = split_key(key)
                event(INFO, "state_removed", kpi=kpi, database=where, why="no longer polled")

    def _unchanged(self, poll: KpiPoll, spec: Spec, kpi: Kpi) -> bool:
        """The poll already does what `spec` asks: same KPI (its other databases aside),
        database, name and labels."""
        database = poll.database
        return (
            kpi.model_copy(update={"database": poll.kpi.database}) == poll.kpi
            and spec.databases.get(database) == self._source_config.get(database)
            and spec.metric_name(kpi) == poll.metric
            and spec.series_labels(kpi, database) == poll.const_labels
        )

    def start(self) -> None:
        self.schedule.start()
        event(
            INFO,
            "started",
            kpis=len(self.polls),
            databases=",".join(sorted(self.sources)),
        )

    def poll_all_once(self, only: str | None = None) -> bool:
        """Run every poll (or one KPI's, on each of its databases) once, now; True when all
        succeeded."""
        ok = True
        for name, poll in self.polls.items():
            if only is None or only in (name, poll.kpi.name):
                ok = poll.run(force=True) and ok
        return ok

    def reload(self) -> tuple[bool, list[str]]:
        """Re-read the spec files; a bad spec is refused whole and the running one stays."""
        try:
            return self._reload()
        finally:
            self.metrics.invalidate()  # the next scrape shows the outcome, not a reused render

    def _reload(self) -> tuple[bool, list[str]]:
        with self._reload_lock:
            try:
                loaded = load_spec(self.configs)
            except SpecError as exc:
                errors = [str(p) for p in exc.problems]
                self.metrics.reload_ok.set(0)
                self.last_reload_error = "\n".join(errors)
                event(WARNING, "reload_refused", problems=len(errors), first=errors[0])
                return False, errors
            try:
                self._apply(loaded.spec)
            except (QueryError, StateError) as exc:
                message = exc.message if isinstance(exc, QueryError) else str(exc)
                self.metrics.reload_ok.set(0)
                self.last_reload_error = message
                event(WARNING, "reload_failed", error=message)
                return False, [message]
            self.loaded = loaded
            self.metrics.loaded(loaded.digest)
            self.last_reload_error = None
            event(INFO, "reloaded", kpis=len(self.polls), digest=loaded.digest[:12])
            return True, []

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready once every KPI has finished its first poll attempt."""
        kpis = {
            name: {
                "state": poll.status.state,
                "last_error": poll.status.last_error,
                "reason": poll.status.last_reason,
                "series": poll.status.series,
            }
            for name, poll in sorted(self.polls.items())
        }
        ready = all(info["state"] != "pending" for info in kpis.values())
        return ready, {"ready": ready, "kpis": kpis}

    def metrics_body(self, openmetrics: bool, gzip: bool) -> bytes:
        self.metrics.scrapes.labels("openmetrics" if openmetrics else "text").inc()
        return self.publication.body(openmetrics, gzip)

    def stop(self, grace: float = 10.0) -> None:
        """Stop scheduling, let running polls finish, close pools and the state file."""
        self.schedule.pause()
        deadline = time.monotonic() + grace
        for poll in self.polls.values():
            poll.wait_idle(deadline - time.monotonic())
        # Past the grace period: cancel what still runs on the servers, then let those polls
        # record the outcome (and cursor KPIs keep only what they stored) before closing.
        cancelled = sum(source.cancel_running() for source in self.sources.values())
        if cancelled:
            event(WARNING, "queries_cancelled", count=cancelled, grace=grace)
            deadline = time.monotonic() + CANCEL_WAIT
            for poll in self.polls.values():
                poll.wait_idle(deadline - time.monotonic())
        self.schedule.stop(wait=False)
        for source in self.sources.values():
            source.close()
        if self.store is not None:
            self.store.close()
        event(INFO, "stopped")
