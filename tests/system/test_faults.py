"""Database faults against the real PostgreSQL: killed backends, timeouts, locks, a full pool,
an unreachable server and a revoked login; every KPI recovers and cursor totals stay exact."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from conftest import free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.postgres


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a text-format scrape, keyed by (name, labels)."""
    response = requests.get(url + "/metrics", timeout=10)
    response.raise_for_status()
    result: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            result[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return result


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample whose labels include `labels` (first match), or None."""
    wanted = set(labels.items())
    for (sample_name, sample_labels), sample_value in samples.items():
        if sample_name == name and wanted <= sample_labels:
            return sample_value
    return None


def errors(samples: Samples, kpi: str, reason: str) -> float:
    return value(samples, "kpi_exporter_query_errors_total", kpi=kpi, reason=reason) or 0.0


# a scrape while the exporter restarts, or a check asserting on a half-written state: not yet
RETRY = (requests.RequestException, AssertionError)


def wait_database_up(url: str, up: int, timeout: float, what: str) -> None:
    wait_until(
        lambda: value(scrape(url), "kpi_exporter_database_up", database="pg") == up,
        timeout,
        what=what,
        retry_on=RETRY,
    )


def exporter_ports(pid: int) -> set[int]:
    """Local TCP ports of the process' sockets connected to PostgreSQL (5432)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            parts = line.split()
            local, remote = parts[1], parts[2]
            if int(remote.rsplit(":", 1)[1], 16) == 5432 and parts[9] in inodes:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def backends_of(admin: psycopg.Connection, pid: int) -> list[int]:
    """Backend PIDs serving this exporter process (and no one else's)."""
    ports = sorted(exporter_ports(pid))
    if not ports:
        return []
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'kpi-exporter' "
        "AND client_port = ANY(%s)",
        [ports],
    ).fetchall()
    return [row[0] for row in rows]


def write_spec(path: Path, dsn: str, kpis: str, databases: str = "", exporter: str = "") -> Path:
    text = (
        "exporter:\n"
        "  labels: {service: faults}\n"
        f"  state_dir: {path.parent / 'state'}\n"
        f"{exporter}"
        "databases:\n"
        "  pg:\n"
        f'    dsn: "{dsn}"\n'
        f"{databases}"
        "kpis:\n"
        f"{kpis}"
    )
    path.write_text(text)
    return path


CURSOR_KPI = """\
  - name: fault_events_total
    type: counter
    database: pg
    interval: 500ms
    timeout: 5s
    cursor: id
    start: earliest
    batch: 50
    query: SELECT id, kind FROM events WHERE id > :cursor ORDER BY id LIMIT :batch
    labels: [kind]
"""


class EventWriter(threading.Thread):
    """Inserts events one by one on one connection, so ids commit in order."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, application_name="fault-writer") as conn:
            for n in range(100_000):
                if self.stop.wait(0.01):
                    return
                conn.execute("INSERT INTO events (kind) VALUES (%s)", [("a", "b", "c")[n % 3]])
                self.written += 1


def create_events(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL)")


def assert_cursor_matches_sql(url: str, dsn: str) -> dict[str, float]:
    """The cursor counter per kind ends equal to count(*) per kind: nothing lost or doubled."""
    with psycopg.connect(dsn) as conn:
        truth = dict(conn.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())

    def exported() -> dict[str, float] | None:
        samples = scrape(url)
        got = {kind: value(samples, "fault_events_total", kind=kind) for kind in ("a", "b", "c")}
        return got if got == {k: float(v) for k, v in truth.items()} else None

    try:
        return wait_until(exported, 30, what="cursor totals equal to SQL", retry_on=RETRY)
    except AssertionError:
        samples = scrape(url)
        got = {k: value(samples, "fault_events_total", kind=k) for k in ("a", "b", "c")}
        raise AssertionError(f"exported {got} != SQL {truth}") from None


@pytest.fixture
def admin(postgres_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(postgres_dsn, autocommit=True, application_name="fault-admin") as conn:
        yield conn


def test_backends_killed_fifty_times(
    pg_schema: tuple[str, str], run_exporter: Any, admin: psycopg.Connection, tmp_path: Path
) -> None:
    dsn, _ = pg_schema
    create_events(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (shard text, amount int)")
        conn.execute("INSERT INTO items VALUES ('x', 1), ('y', 2), ('z', 3)")
    plain = "".join(
        f"""\
  - name: fault_items_{n}
    type: gauge
    database: pg
    interval: 500ms
    timeout: 5s
    labels: [shard]
    query: SELECT shard, amount + {n} AS value, pg_sleep(0.05) FROM items
"""
        for n in range(3)
    )
    max_connections = 3
    spec = write_spec(
        tmp_path / "spec.yaml",
        dsn,
        plain + CURSOR_KPI,
        databases=f"    max_connections: {max_connections}\n",
    )
    exporter = run_exporter(["-c", str(spec), "--log-format", "json"])
    exporter.wait_ready()
    writer = EventWriter(dsn)
    writer.start()
    kpis = ["fault_items_0", "fault_items_1", "fault_items_2", "fault_events_total"]
    recoveries: list[float] = []
    killed = 0
    most_connections = 0
    try:
        for _ in range(50):
            backends = wait_until(
                lambda: backends_of(admin, exporter.proc.pid),
                10,
                0.02,
                what="an exporter backend",
                retry_on=RETRY,
            )
            most_connections = max(most_connections, len(backends))
            kill_at = time.time()
            for backend in backends:
                admin.execute("SELECT pg_terminate_backend(%s)", [backend])
                killed += 1

            def recovered(kill_at: float = kill_at) -> float | None:
                samples = scrape(exporter.url)
                stamps = [
                    value(samples, "kpi_exporter_last_success_timestamp_seconds", kpi=k)
                    for k in kpis
                ]
                ups = [value(samples, "kpi_exporter_kpi_up", kpi=k) for k in kpis]
                if all(s is not None and s > kill_at for s in stamps) and ups == [1.0] * 4:
                    return time.time() - kill_at  # an upper bound: observed, not exact
                return None

            recoveries.append(
                wait_until(
                    recovered, 30, what="every KPI to succeed after the kill", retry_on=RETRY
                )
            )
            most_connections = max(most_connections, len(exporter_ports(exporter.proc.pid)))
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    assert writer.written > 100
    assert killed >= 50
    assert most_connections <= max_connections
    # After every kill each KPI's next poll succeeded: a failure was never followed by another,
    # so recovery never waited on backoff (a second failure would add an interval).
    streaks = [int(n) for n in re.findall(r'"failures": (\d+)', exporter.output())]
    assert streaks, "the kills caused no failed poll at all: they did not land mid-poll"
    assert max(streaks) == 1, f"a KPI failed {max(streaks)} polls in a row"
    assert exporter.proc.poll() is None
    assert_cursor_matches_sql(exporter.url, dsn)
    print(
        f"\nkills={killed} failed_polls={len(streaks)} all KPIs seen recovered after a kill "
        f"median={sorted(recoveries)[len(recoveries) // 2]:.2f}s max={max(recoveries):.2f}s "
        f"max_connections_seen={most_connections}"
    )


def test_timeout_is_cancelled_on_the_server_and_the_connection_reused(
    pg_schema: tuple[str, str], run_exporter: Any, admin: psycopg.Connection, tmp_path: Path
) -> None:
    dsn, schema = pg_schema
    marker = f"slow_{schema}"
    spec = write_spec(
        tmp_path / "spec.yaml",
        dsn,
        f"""\
  - name: fault_slow
    type: gauge
    database: pg
    interval: 2s
    timeout: 1s
    query: SELECT pg_sleep(30)::text AS "{marker}", 1 AS value
""",
        databases="    max_connections: 1\n",
    )
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    seen: dict[tuple[int, float], float] = {}  # (backend, query start) -> longest seen running

    def three_runs_seen() -> bool:
        rows = admin.execute(
            "SELECT pid, extract(epoch FROM query_start), "
            "extract(epoch FROM clock_timestamp() - query_start) FROM pg_stat_activity "
            "WHERE state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
            [f"%{marker}%"],
        ).fetchall()
        for pid, started, running in rows:
            key = (pid, float(started))
            seen[key] = max(seen.get(key, 0.0), float(running))
        return len(seen) >= 3

    wait_until(
        three_runs_seen, 30, 0.05, what=lambda: f"3 runs of the slow query ({len(seen)} seen)"
    )
    longest = max(seen.values())
    # cancelled by statement_timeout on the server: gone within a second of the 1 s timeout
    assert longest < 2.0, f"a timed-out query ran {longest:.2f}s on the server"
    assert len({pid for pid, _ in seen}) == 1, "the connection was not reused after a timeout"
    samples = wait_until(
        lambda: (s := scrape(exporter.url)) and errors(s, "fault_slow", "timeout") >= 3 and s,
        15,
        what="three timeouts counted",
        retry_on=RETRY,
    )
    assert errors(samples, "fault_slow", "sql") == 0
    assert value(samples, "kpi_exporter_kpi_up", kpi="fault_slow") == 0
    print(f"\nlongest server-side run {longest:.3f}s for a 1s timeout over {len(seen)} polls")


def test_locked_table_times_out_one_kpi_and_the_others_keep_their_schedule(
    pg_schema: tuple[str, str], run_exporter: Any, tmp_path: Path
) -> None:
    dsn, _ = pg_schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE locked (value int)")
        conn.execute("INSERT INTO locked VALUES (7)")
        conn.execute("CREATE TABLE free (value int)")
        conn.execute("INSERT INTO free VALUES (5)")
    spec = write_spec(
        tmp_path / "spec.yaml",
        dsn,
        """\
  - name: fault_locked
    type: gauge
    database: pg
    interval: 1s
    timeout: 1s
    query: SELECT value FROM locked
  - name: fault_free_a
    type: gauge
    database: pg
    interval: 1s
    query: SELECT value FROM free
  - name: fault_free_b
    type: gauge
    database: pg
    interval: 1s
    query: SELECT value + 1 AS value FROM free
""",
        databases="    max_connections: 2\n",
    )
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    before = scrape(exporter.url)
    stamps: dict[str, set[float]] = {"fault_free_a": set(), "fault_free_b": set()}
    with psycopg.connect(dsn) as locker:
        locker.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        lock_start = time.time()
        for _ in range(40):
            samples = scrape(exporter.url)
            for kpi in stamps:
                stamp = value(samples, "kpi_exporter_last_success_timestamp_seconds", kpi=kpi)
                if stamp is not None and stamp > lock_start:
                    stamps[kpi].add(stamp)
            if errors(samples, "fault_locked", "timeout") >= 3 and time.time() - lock_start > 6:
                break
            time.sleep(0.25)
        locker.rollback()
        held = time.time() - lock_start
    assert (
        errors(samples, "fault_locked", "timeout") >= errors(before, "fault_locked", "timeout") + 2
    )
    assert value(samples, "kpi_exporter_kpi_up", kpi="fault_locked") == 0
    for kpi, seen in stamps.items():
        assert errors(samples, kpi, "timeout") + errors(samples, kpi, "pool") == 0
        # a 1 s schedule over `held` seconds: at least half its polls succeeded meanwhile
        assert len(seen) >= held / 2, f"{kpi} polled {len(seen)} times in {held:.1f}s of lock"
    wait_until(
        lambda: value(scrape(exporter.url), "fault_locked") == 7.0,
        40,
        what="the locked KPI back",
        retry_on=RETRY,
    )
    print(f"\nlock held {held:.1f}s; other KPIs polled {[len(s) for s in stamps.values()]} times")


def test_pool_exhaustion_is_bounded_counted_and_scrapes_stay_fast(
    pg_schema: tuple[str, str], run_exporter: Any, tmp_path: Path
) -> None:
    dsn, _ = pg_schema
    kpis = "".join(
        f"""\
  - name: fault_busy_{n}
    type: gauge
    database: pg
    interval: 1s
    timeout: 5s
    query: SELECT 1 AS value, pg_sleep(1.5)
"""
        for n in range(4)
    )
    spec = write_spec(
        tmp_path / "spec.yaml",
        dsn,
        kpis,
        databases="    max_connections: 1\n",
        exporter="  pool_timeout: 500ms\n",
    )
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready(timeout=60)
    latencies = []
    most = 0
    for _ in range(30):
        started = time.monotonic()
        samples = scrape(exporter.url)
        latencies.append(time.monotonic() - started)
        most = max(most, len(exporter_ports(exporter.proc.pid)))
        time.sleep(0.2)
    pool_errors = sum(errors(samples, f"fault_busy_{n}", "pool") for n in range(4))
    assert pool_errors >= 4
    assert all(errors(samples, f"fault_busy_{n}", "timeout") == 0 for n in range(4))
    assert most <= 1, f"{most} connections open with max_connections 1"
    ready = requests.get(exporter.url + "/ready", timeout=5).json()
    reasons = {info["reason"] for info in ready["kpis"].values()}
    assert "pool" in reasons
    # waits are bounded by pool_timeout: the failure message says so
    assert any("within 0.5s" in (info["last_error"] or "") for info in ready["kpis"].values())
    latencies.sort()
    # scrapes never wait for a connection: they read snapshots
    assert latencies[-1] < 5.0
    print(
        f"\npool errors {pool_errors:.0f}; scrape median "
        f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
        "while the pool was exhausted"
    )


class TcpProxy:
    """A loopback TCP forwarder to PostgreSQL that the test can stop (server gone) and restart."""

    def __init__(self, port: int, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.port, self.target = port, target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(10_000):
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Close the listener and cut every forwarded connection."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()


def test_unreachable_server_then_recovery_without_restart(
    pg_schema: tuple[str, str], run_exporter: Any, tmp_path: Path
) -> None:
    dsn, _ = pg_schema
    create_events(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO events (kind) SELECT 'a' FROM generate_series(1, 30)")
    port = free_port()
    proxied = dsn.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    assert proxied != dsn
    spec = write_spec(
        tmp_path / "spec.yaml",
        proxied,
        CURSOR_KPI,
        databases="    connect_timeout: 1s\n",
        exporter="  pool_timeout: 1s\n",
    )
    # the port is closed: the exporter starts anyway and serves its own metrics
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    samples = wait_until(
        lambda: (
            (s := scrape(exporter.url)) and errors(s, "fault_events_total", "connection") >= 2 and s
        ),
        30,
        what="connection errors against a closed port",
        retry_on=RETRY,
    )
    assert value(samples, "kpi_exporter_database_up", database="pg") == 0
    proxy = TcpProxy(port)
    proxy.start()
    writer = EventWriter(dsn)
    writer.start()
    try:
        wait_database_up(exporter.url, 1, 60, "recovery once the port answers")
        # the server goes away mid-run (every connection cut), then comes back
        for _ in range(3):
            time.sleep(1.0)
            proxy.stop()
            wait_database_up(exporter.url, 0, 30, "database_up 0 while the server is gone")
            proxy.start()
            wait_database_up(exporter.url, 1, 60, "database_up 1 after the server is back")
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    try:
        assert_cursor_matches_sql(exporter.url, dsn)
    finally:
        proxy.stop()
    assert exporter.proc.poll() is None


def test_revoked_login_then_restored(
    pg_schema: tuple[str, str],
    run_exporter: Any,
    admin: psycopg.Connection,
    tmp_path: Path,
) -> None:
    dsn, schema = pg_schema
    role = f"r_{schema}"
    create_events(dsn)
    admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
        role_dsn = dsn.replace("postgres@", f"{role}@")
        assert role_dsn != dsn
        spec = write_spec(
            tmp_path / "spec.yaml",
            role_dsn,
            CURSOR_KPI,
            databases="    connect_timeout: 1s\n",
            exporter="  pool_timeout: 1s\n",
        )
        exporter = run_exporter(["-c", str(spec)])
        exporter.wait_ready()
        writer = EventWriter(dsn)
        writer.start()
        try:
            wait_database_up(exporter.url, 1, 30, "database up")
            admin.execute(f"ALTER ROLE {role} NOLOGIN")
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [role],
            )
            samples = wait_until(
                lambda: (
                    (s := scrape(exporter.url))
                    and value(s, "kpi_exporter_database_up", database="pg") == 0
                    and s
                ),
                30,
                what="database_up 0 after the login is revoked",
                retry_on=RETRY,
            )
            assert errors(samples, "fault_events_total", "connection") >= 1
            assert "not permitted to log in" in exporter.output()
            time.sleep(2)
            admin.execute(f"ALTER ROLE {role} LOGIN")
            wait_database_up(exporter.url, 1, 60, "recovery once the login is restored")
        finally:
            writer.stop.set()
            writer.join(timeout=10)
        assert_cursor_matches_sql(exporter.url, dsn)
        exporter.stop()
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        admin.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}')
        admin.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}')
        admin.execute(f"DROP ROLE {role}")
