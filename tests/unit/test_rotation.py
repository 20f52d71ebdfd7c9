"""DsnFileSource: when a `dsn_file` is read again, and what a changed DSN does to the queries."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from exporter.sources.base import QueryError, Rows
from exporter.sources.rotation import DsnFileSource
from exporter.spec.model import Database


class ServerOf:
    """Sources over one imaginary server: a DSN connects unless it was revoked."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.opened: list[FakeSource] = []
        self.gate: threading.Barrier | None = None

    def open(self, dsn: str) -> FakeSource:
        source = FakeSource(self, dsn)
        self.opened.append(source)
        return source


class FakeSource:
    def __init__(self, server: ServerOf, dsn: str) -> None:
        self.server = server
        self.dsn = dsn
        self.closed = False
        self.queries = 0

    def query(self, sql: str, params: Mapping[str, Any], timeout: float) -> Rows:
        self.queries += 1
        if self.server.gate is not None:
            self.server.gate.wait(5)
        if sql == "bad":
            raise QueryError("sql", "syntax error")
        if self.dsn in self.server.revoked:
            raise QueryError("connection", "password authentication failed")
        return Rows(("dsn",), [(self.dsn,)])

    def cancel_running(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def _source(tmp_path: Path, server: ServerOf, first: str) -> tuple[DsnFileSource, Path]:
    path = tmp_path / "dsn"
    path.write_text(first + "\n")
    database = Database(dsn_file=path)
    return DsnFileSource("app", database, first, server.open), path


def test_a_failed_connection_follows_a_changed_file_and_retries_once(tmp_path: Path) -> None:
    server = ServerOf()
    source, path = _source(tmp_path, server, "postgresql://u:old@h/db")
    assert source.query("q", {}, 1.0).rows == [("postgresql://u:old@h/db",)]
    path.write_text("postgresql://u:new@h/db\n")
    assert source.query("q", {}, 1.0).rows == [("postgresql://u:old@h/db",)]  # still works
    server.revoked.add("postgresql://u:old@h/db")
    assert source.query("q", {}, 1.0).rows == [("postgresql://u:new@h/db",)]
    assert [s.dsn for s in server.opened] == ["postgresql://u:old@h/db", "postgresql://u:new@h/db"]
    assert server.opened[0].closed and not server.opened[1].closed


def test_an_unchanged_file_or_another_error_keeps_the_source(tmp_path: Path) -> None:
    server = ServerOf()
    source, path = _source(tmp_path, server, "sqlite:///a.db")
    with pytest.raises(QueryError) as caught:
        source.query("bad", {}, 1.0)
    assert caught.value.reason == "sql"
    server.revoked.add("sqlite:///a.db")
    path.write_text("sqlite:///b.db\n")
    with pytest.raises(QueryError):  # sql errors never re-read: b.db was not opened for it
        source.query("bad", {}, 1.0)
    path.write_text("sqlite:///a.db\n")
    with pytest.raises(QueryError) as caught:
        source.query("q", {}, 1.0)
    assert caught.value.reason == "connection"
    assert len(server.opened) == 1
    path.unlink()  # unreadable: the poll reports its own connection error
    with pytest.raises(QueryError) as caught:
        source.query("q", {}, 1.0)
    assert caught.value.message == "password authentication failed"


def test_concurrent_failures_open_one_new_source(tmp_path: Path) -> None:
    server = ServerOf()
    source, path = _source(tmp_path, server, "sqlite:///a.db")
    server.revoked.add("sqlite:///a.db")
    path.write_text("sqlite:///b.db\n")
    server.gate = threading.Barrier(4)  # four polls fail on the old source together, then retry
    answers: list[Any] = []

    def poll() -> None:
        answers.append(source.query("q", {}, 1.0).rows)

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers == [[("sqlite:///b.db",)]] * 4
    assert [s.dsn for s in server.opened] == ["sqlite:///a.db", "sqlite:///b.db"]


def test_reread_on_reload_names_the_database(tmp_path: Path) -> None:
    server = ServerOf()
    source, path = _source(tmp_path, server, "sqlite:///a.db")
    assert source.reread() is None
    path.write_text("sqlite:///b.db\n")
    fresh = source.reread()
    assert fresh is not None and fresh[0] == "sqlite:///b.db"
    source.install(fresh, why="reload")
    assert source.current is fresh[1] and server.opened[0].closed
    path.unlink()
    with pytest.raises(QueryError) as caught:
        source.reread()
    assert caught.value.message.startswith(f"database app: cannot read dsn_file {path}")
