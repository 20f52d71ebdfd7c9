"""Rotated credentials: a `dsn_file` whose DSN changes is followed without a restart, when the
old DSN stops connecting (no reload) and on SIGHUP (the old one still connects); the DSNs'
passwords appear nowhere. The test server trusts 127.0.0.1, so it checks no password: the old
DSN stops working the way a rotated one does by its role losing LOGIN, and the polled series
says which role ran the query."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from conftest import wait_until

OLD_PASSWORD = f"old-{uuid.uuid4().hex[:12]}-S3cr3t"
NEW_PASSWORD = f"new-{uuid.uuid4().hex[:12]}-S3cr3t"
NEWER_PASSWORD = f"newer-{uuid.uuid4().hex[:12]}-S3cr3t"

SPEC = """
exporter:
  labels: {{service: rotation}}
  pool_timeout: 2s
databases:
  app:
    dsn_file: {dsn_file}
    connect_timeout: 2s
kpis:
  - name: orders_by_role
    type: gauge
    database: app
    interval: 1s
    labels: [role]
    query: SELECT current_user AS role, count(*) AS value FROM orders
"""


@pytest.fixture
def roles(pg_schema: tuple[str, str], postgres_dsn: str) -> Iterator[tuple[str, str, str]]:
    """Two login roles that may read `orders`: (schema DSN, first role, second role)."""
    dsn, schema = pg_schema
    names = [f"kpi_rot_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".orders (id serial PRIMARY KEY)')
        conn.execute(f'INSERT INTO "{schema}".orders DEFAULT VALUES')
        for role in names:
            conn.execute(f"CREATE ROLE {role} LOGIN")
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
            conn.execute(f'GRANT SELECT ON "{schema}".orders TO {role}')
    try:
        yield dsn, names[0], names[1]
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for role in names:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    [role],
                )
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")


def _dsn(schema_dsn: str, role: str, password: str) -> str:
    assert schema_dsn.startswith("postgresql://postgres@"), "the test DSN must name postgres"
    return schema_dsn.replace("postgresql://postgres@", f"postgresql://{role}:{password}@", 1)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)  # as a secrets manager or a Kubernetes volume swaps it: whole


def _roles_polled(body: str) -> set[str]:
    return set(re.findall(r'^orders_by_role\{[^}]*\brole="([^"]+)"', body, re.MULTILINE))


def _sessions(postgres_dsn: str, role: str) -> int:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role]
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_rotated_dsn_file_is_followed_without_restart_and_on_reload(
    run_exporter, roles, postgres_dsn: str, tmp_path: Path
) -> None:
    schema_dsn, first, second = roles
    dsn_file = tmp_path / "dsn"
    _write(dsn_file, _dsn(schema_dsn, first, OLD_PASSWORD))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(dsn_file=dsn_file))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    pid = exporter.proc.pid
    wait_until(
        lambda: _roles_polled(exporter.metrics()) == {first},
        30,
        what=lambda: f"polls as the first role; log:\n{exporter.output()[-3000:]}",
    )

    # rotation: the file names the second role, and the first stops connecting at once
    _write(dsn_file, _dsn(schema_dsn, second, NEW_PASSWORD))
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {first} NOLOGIN")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [first]
        )
    wait_until(
        lambda: _roles_polled(exporter.metrics()) == {second},
        60,
        what=lambda: f"polls as the second role; log:\n{exporter.output()[-3000:]}",
    )
    assert exporter.proc.pid == pid and exporter.proc.poll() is None
    assert " reloaded " not in exporter.output()
    assert 'dsn_file_changed database=app why="connection failed"' in exporter.output()

    # reload: the file names the first role again (LOGIN back) while the second still works;
    # only the reload can switch, and the second role's pool closes
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {first} LOGIN")
    _write(dsn_file, _dsn(schema_dsn, first, NEWER_PASSWORD))
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: _roles_polled(exporter.metrics()) == {first},
        60,
        what=lambda: f"polls as the first role after SIGHUP; log:\n{exporter.output()[-3000:]}",
    )
    wait_until(lambda: _sessions(postgres_dsn, second) == 0, 30, what="the old pool to close")
    assert exporter.proc.pid == pid

    status = requests.get(exporter.url + "/", timeout=10).text
    seen = exporter.metrics() + status + exporter.output()
    for password in (OLD_PASSWORD, NEW_PASSWORD, NEWER_PASSWORD):
        assert password not in seen
    assert exporter.stop() == 0
    assert all(p not in exporter.output() for p in (OLD_PASSWORD, NEW_PASSWORD, NEWER_PASSWORD))
