"""systemd and shutdown: sd_notify messages on a socket the test opens; SIGTERM with a grace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from conftest import ROOT, exporter_command, wait_until
from test_production import gauge_spec, make_values_db


class NotifySocket:
    """The receiving end of NOTIFY_SOCKET, as systemd holds it."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.5)
        self.messages: list[dict[str, str]] = []

    def next(self, timeout: float, wanted: str) -> dict[str, str]:
        """The next message holding field `wanted` (e.g. READY); earlier ones are kept."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append(fields)
            if wanted in fields:
                return fields
        raise AssertionError(f"no {wanted} message within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


def _spec(tmp_path: Path) -> Path:
    db = tmp_path / "values.db"
    make_values_db(db, {"tickets_open": 3.0})
    spec = tmp_path / "spec.yaml"
    spec.write_text(gauge_spec(db, ["tickets_open"]))
    return spec


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_watchdog_reload_stopping(
    run_exporter, tmp_path: Path, abstract: bool
) -> None:
    spec = _spec(tmp_path)
    if abstract:
        name = f"kpi-exporter-test-{uuid.uuid4().hex}"
        receiver, env_value = NotifySocket(b"\0" + name.encode()), "@" + name
    else:
        path = tmp_path / "notify.sock"
        receiver, env_value = NotifySocket(str(path)), str(path)
    try:
        exporter = run_exporter(
            ["-c", str(spec), "--web.enable-lifecycle"],
            env={"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "400000"},
        )
        ready = receiver.next(30, "READY")
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(exporter.proc.pid)
        assert "1 KPIs" in ready["STATUS"]
        # READY comes after the bind: the port answers at once
        assert requests.get(exporter.url + "/health", timeout=5).status_code == 200

        pings = 0
        deadline = time.monotonic() + 20
        while pings < 3 and time.monotonic() < deadline:
            pings += receiver.next(deadline - time.monotonic(), "WATCHDOG")["WATCHDOG"] == "1"
        assert pings >= 3

        assert requests.post(exporter.url + "/-/reload", timeout=10).status_code == 200
        reloading = receiver.next(10, "RELOADING")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        assert receiver.next(10, "READY")["READY"] == "1"

        exporter.proc.send_signal(signal.SIGTERM)
        assert receiver.next(10, "STOPPING")["STOPPING"] == "1"
        assert exporter.proc.wait(timeout=30) == 0
    finally:
        receiver.close()


def test_no_notify_socket_means_no_messages_and_normal_exit(run_exporter, tmp_path) -> None:
    spec = _spec(tmp_path)
    exporter = run_exporter(["-c", str(spec)], env={"NOTIFY_SOCKET": "", "WATCHDOG_USEC": ""})
    exporter.wait_ready()
    assert exporter.stop(signal.SIGINT) == 0
    assert "stopped" in exporter.log.read_text()


# -- graceful shutdown against PostgreSQL -----------------------------------------------------


def _running(dsn: str, token: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT application_name, state FROM pg_stat_activity "
            "WHERE query LIKE %s AND pid <> pg_backend_pid()",
            [f"%{token}%"],
        ).fetchall()


def _pg_spec(tmp_path: Path, dsn: str, kpis: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""
exporter:
  labels: {{service: shutdown}}
  state_dir: {tmp_path / "state"}
databases:
  pg:
    dsn: "{dsn}"
    max_connections: 2
kpis:
{kpis}
"""
    )
    return spec


def test_sigterm_cancels_queries_past_the_grace_period(
    run_exporter, pg_schema, postgres_dsn, tmp_path
) -> None:
    dsn, _ = pg_schema
    token = f"shutdown_{uuid.uuid4().hex[:10]}"
    spec = _pg_spec(
        tmp_path,
        dsn,
        f"""
  - name: slow_gauge
    type: gauge
    database: pg
    interval: 1h
    timeout: 5m
    query: SELECT 1 AS value FROM (SELECT pg_sleep(120)) AS s /* {token} */
""",
    )
    exporter = run_exporter(["-c", str(spec), "--grace", "1"])
    wait_until(
        lambda: ("kpi-exporter", "active") in _running(postgres_dsn, token),
        30,
        what="the slow query to run on the server",
    )
    started = time.monotonic()
    assert exporter.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 20
    # PostgreSQL would keep sleeping after the client left; the cancel stopped it
    wait_until(lambda: _running(postgres_dsn, token) == [], 10, what="the backend to be gone")
    log = exporter.log.read_text()  # stop() closed the handle output() flushes
    assert "queries_cancelled" in log and "count=1" in log
    assert "stopped" in log


def test_sigterm_lets_a_poll_finish_within_grace_and_persists_its_cursor(
    run_exporter, pg_schema, postgres_dsn, tmp_path
) -> None:
    dsn, schema = pg_schema
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".events (id integer PRIMARY KEY)')
        conn.execute(f'INSERT INTO "{schema}".events SELECT generate_series(1, 7)')
    token = f"finish_{uuid.uuid4().hex[:10]}"
    spec = _pg_spec(
        tmp_path,
        dsn,
        f"""
  - name: events_seen_total
    type: counter
    database: pg
    interval: 1h
    timeout: 1m
    cursor: id
    start: earliest
    query: |
      SELECT e.id FROM events e, (SELECT pg_sleep(3)) AS s /* {token} */
      WHERE e.id > :cursor ORDER BY e.id LIMIT :batch
""",
    )
    exporter = run_exporter(["-c", str(spec), "--grace", "30"])
    wait_until(
        lambda: ("kpi-exporter", "active") in _running(postgres_dsn, token),
        30,
        what="the cursor query to run on the server",
    )
    assert exporter.stop(signal.SIGTERM) == 0
    log = exporter.log.read_text()
    assert "queries_cancelled" not in log
    shown = subprocess.run(
        [*exporter_command(), "state", "show", "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ},
    )
    assert shown.returncode == 0, shown.stderr
    (state,) = json.loads(shown.stdout)
    assert state["kpi"] == "events_seen_total"
    assert state["cursor"] == 7
    assert state["rows_processed"] == 7
