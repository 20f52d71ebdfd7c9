"""A source whose DSN lives in a file that may change under it (a rotated password from a
secrets manager or a Kubernetes secret): the file is read again when a connection fails and on
reload, and a changed DSN gets a new backend source, without a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from logging import INFO
from typing import Any

from exporter.log import event
from exporter.sources.base import QueryError, Rows, Source, resolve_dsn
from exporter.spec.model import Database


class DsnFileSource:
    """The backend source of the DSN now in a database's `dsn_file`; DSNs never leave it."""

    def __init__(self, name: str, database: Database, dsn: str, open_dsn: Callable[[str], Source]):
        self.name = name
        self._database = database
        self._open_dsn = open_dsn
        self._dsn = dsn
        self._source = open_dsn(dsn)
        self._lock = threading.RLock()  # install() may run inside _follow_file()

    @property
    def current(self) -> Source:
        """The backend source queries go to now."""
        return self._source

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        source = self._source
        try:
            return source.query(sql, params, timeout)
        except QueryError as exc:
            # an authentication failure, a renamed user or database (or a pool still waiting
            # for its first login): the file may say more now
            if exc.reason not in ("connection", "pool") or not self._follow_file(source):
                raise
        return self._source.query(sql, params, timeout)  # retried once, with the new DSN

    def _follow_file(self, failed: Source) -> bool:
        """Re-read the file after `failed` could not connect; True when a new DSN is in force."""
        with self._lock:
            if self._source is not failed:
                return True  # another poll on this database already switched
            try:
                fresh = self.reread()
            except QueryError:
                return False  # the poll reports its own connection error
            if fresh is None:
                return False
            self.install(fresh, why="connection failed")
            return True

    def reread(self) -> tuple[str, Source] | None:
        """A source for the file's DSN when it differs from the one in force, not yet in force.

        Raises QueryError when the file cannot be read or no backend serves its DSN."""
        try:
            dsn = resolve_dsn(self._database)
        except QueryError as exc:
            raise QueryError(exc.reason, f"database {self.name}: {exc.message}") from None
        if dsn == self._dsn:
            return None
        return dsn, self._open_dsn(dsn)

    def install(self, fresh: tuple[str, Source], why: str) -> None:
        """Put a source from reread() in force; the old one closes (its queries end first)."""
        with self._lock:
            old = self._source
            self._dsn, self._source = fresh
        event(INFO, "dsn_file_changed", database=self.name, why=why)
        old.close()

    def cancel_running(self) -> int:
        return self._source.cancel_running()

    def close(self) -> None:
        self._source.close()
