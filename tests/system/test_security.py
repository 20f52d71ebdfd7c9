"""Security on a running exporter: DSN passwords never leak, sessions are read-only, and
injection strings go through every parameter path as bound values."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from conftest import ROOT, free_port, wait_until
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.postgres


PASSWORD = f"pw-{uuid.uuid4().hex[:12]}-S3cr3t"


def samples_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = set(labels.items())
    for (sample_name, sample_labels), value in samples_of(text).items():
        if sample_name == name and wanted <= sample_labels:
            return value
    return None


@pytest.fixture
def secret_role(pg_schema: tuple[str, str], postgres_dsn: str) -> Iterator[str]:
    """A role with a password (it logs in through the DSN that carries it)."""
    _, schema = pg_schema
    role = f"s_{schema}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
    try:
        yield role
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [role],
            )
            conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}')
            conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}')
            conn.execute(f"DROP ROLE {role}")


def test_password_never_appears_in_any_output(
    pg_schema: tuple[str, str], secret_role: str, run_exporter: Any, tmp_path: Path
) -> None:
    dsn, schema = pg_schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (shard text, amount int)")
        conn.execute("INSERT INTO items VALUES ('a', 1), ('b', 2)")
        conn.execute(f"GRANT SELECT ON items TO {secret_role}")
    role_url = f"postgresql://{secret_role}:{PASSWORD}@127.0.0.1:5432/test"
    inline = f"{role_url}?options=-csearch_path%3D{schema}"
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(
        f"host=127.0.0.1 port=5432 dbname=test user={secret_role} password={PASSWORD} "
        f"options='-csearch_path={schema}'\n"
    )
    closed = f"postgresql://{secret_role}:{PASSWORD}@127.0.0.1:{free_port()}/test"
    malformed = f"postgresql://{secret_role}:{PASSWORD}@[::1/test"

    def kpi(name: str, database: str, query: str, labels: str = "[]") -> str:
        return (
            f"  - name: {name}\n    type: gauge\n    database: {database}\n    interval: 1s\n"
            f"    labels: {labels}\n    query: {query}\n"
        )

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "exporter:\n"
        "  labels: {service: secrets}\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        "  pool_timeout: 1s\n"
        "databases:\n"
        f'  inline: {{dsn: "{inline}"}}\n'
        f"  fromfile: {{dsn_file: {dsn_file}}}\n"
        "  fromenv: {dsn: '${SECRET_DSN}', connect_timeout: 1s}\n"
        f'  malformed: {{dsn: "{malformed}", connect_timeout: 1s}}\n'
        "kpis:\n"
        + kpi("ok_items", "inline", "SELECT shard, amount AS value FROM items", "[shard]")
        + kpi("sql_error", "fromfile", "SELECT 1 AS value FROM missing_table")
        + kpi("result_error", "fromfile", "SELECT 'x' AS value")
        + kpi("denied", "inline", "SELECT count(*) AS value FROM pg_authid")
        + kpi("unreachable", "fromenv", "SELECT 1 AS value")
        + kpi("bad_dsn", "malformed", "SELECT 1 AS value")
    )
    env = {"SECRET_DSN": closed}
    outputs: dict[str, str] = {}
    for log_format in ("json", "text"):
        args = ["-c", str(spec), "--web.enable-lifecycle", "--log-level", "debug"]
        exporter = run_exporter([*args, "--log-format", log_format], env=env)
        exporter.wait_ready(timeout=60)
        text = wait_until(
            lambda exporter=exporter: (
                (t := exporter.metrics())
                and metric(
                    t, "kpi_exporter_query_errors_total", kpi="unreachable", reason="connection"
                )
                and t
            ),
            30,
            what="a connection error",
        )
        outputs[f"metrics-{log_format}"] = text
        assert metric(text, "ok_items", shard="b") == 2.0  # the password DSNs work
        om = requests.get(
            exporter.url + "/metrics", headers={"Accept": "application/openmetrics-text"}
        )
        outputs[f"openmetrics-{log_format}"] = om.text
        for path in ("/", "/ready", "/health", "/nope"):
            outputs[f"{path}-{log_format}"] = requests.get(exporter.url + path, timeout=10).text
        # a reload that fails on the new spec's databases reports why, without the password
        broken = spec.read_text().replace('  inline: {dsn: "', '  inline: {bogus: 1, dsn: "')
        spec_backup = spec.read_text()
        spec.write_text(broken)
        response = requests.post(exporter.url + "/-/reload", timeout=30)
        assert response.status_code == 400
        outputs[f"reload-{log_format}"] = response.text
        spec.write_text(spec_backup)
        exporter.stop(signal.SIGTERM)
        outputs[f"log-{log_format}"] = exporter.output()
    ready = json.loads(outputs["/ready-json"])
    assert ready["kpis"]["sql_error"]["reason"] == "sql"
    assert ready["kpis"]["result_error"]["reason"] == "result"
    assert ready["kpis"]["denied"]["reason"] == "sql"
    assert ready["kpis"]["unreachable"]["reason"] == "connection"
    assert ready["kpis"]["bad_dsn"]["reason"] == "connection"
    for args in (["check"], ["check", "--connect"], ["once"]):
        done = subprocess.run(
            [sys.executable, "-m", "exporter.cli", *args, "-c", str(spec)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={**os.environ, **env},
        )
        outputs[" ".join(args)] = done.stdout + done.stderr
    assert "missing_table" in outputs["check --connect"]  # the errors were reported ...
    assert "permission denied" in outputs["log-json"]
    assert "connection" in outputs["log-text"]
    for name, text in outputs.items():  # ... and none of them carries the password
        assert PASSWORD not in text, f"the password leaked into {name}"
        assert PASSWORD[3:-3] not in text, f"part of the password leaked into {name}"


WRITES = {
    "w_insert": "INSERT INTO victims VALUES (99) RETURNING n AS value",
    "w_update": "UPDATE victims SET n = n + 1 RETURNING n AS value",
    "w_delete_cte": (
        "WITH gone AS (DELETE FROM victims RETURNING n) SELECT count(*) AS value FROM gone"
    ),
    "w_create": "CREATE TABLE made_by_kpi AS SELECT 1 AS value",
    "w_function": "SELECT writer() AS value",
    "w_sequence": "SELECT nextval('victims_seq') AS value",
    "w_row_lock": "SELECT n AS value FROM victims LIMIT 1 FOR UPDATE",
    "w_multi": "COMMIT; INSERT INTO victims VALUES (7); SELECT 1 AS value",
    "w_read_write": "SELECT set_config('transaction_read_only', 'off', true) AS x, 1 AS value",
}


# Not a write itself: it tries to switch later transactions of its pooled session to read-write.
SESSION_ATTACK = "SELECT set_config('default_transaction_read_only', 'off', false) AS x, 1 AS value"


def test_read_only_sessions_refuse_every_write(
    pg_schema: tuple[str, str], run_exporter: Any, tmp_path: Path
) -> None:
    """As the superuser (every privilege), only read-only sessions stand between a KPI's
    query and the data: each write fails with reason=sql and nothing changes."""
    dsn, _ = pg_schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE victims (n int)")
        conn.execute("INSERT INTO victims VALUES (1), (2), (3)")
        conn.execute("CREATE SEQUENCE victims_seq")
        conn.execute(
            "CREATE FUNCTION writer() RETURNS int LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO victims VALUES (42); RETURN 1; END $$"
        )
    kpis = {**WRITES, "session_attack": SESSION_ATTACK}
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "exporter:\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        "databases:\n"
        f'  pg: {{dsn: "{dsn}", max_connections: 1}}\n'  # one session shared by every KPI
        "kpis:\n"
        + "".join(
            f"  - name: {name}\n    type: gauge\n    database: pg\n    interval: 500ms\n"
            f"    query: {json.dumps(query)}\n"
            for name, query in kpis.items()
        )
    )
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready(timeout=60)

    def refused_three_times() -> str | None:
        text = exporter.metrics()
        counts = [
            metric(text, "kpi_exporter_query_errors_total", kpi=name, reason="sql") or 0
            for name in WRITES
        ]
        attacks = metric(text, "kpi_exporter_last_success_timestamp_seconds", kpi="session_attack")
        return text if min(counts) >= 3 and attacks else None

    try:
        text = wait_until(refused_three_times, 60, what="three refusals of every write")
    except AssertionError:
        ready = requests.get(exporter.url + "/ready", timeout=10).json()["kpis"]
        raise AssertionError(json.dumps(ready, indent=1)) from None
    for name in WRITES:
        assert metric(text, "kpi_exporter_kpi_up", kpi=name) == 0, name
        for reason in ("result", "timeout", "connection", "pool"):
            assert not metric(text, "kpi_exporter_query_errors_total", kpi=name, reason=reason)
    ready = requests.get(exporter.url + "/ready", timeout=10).json()["kpis"]
    assert "read-only transaction" in ready["w_insert"]["last_error"]
    assert "read-only transaction" in ready["w_function"]["last_error"]
    with psycopg.connect(dsn) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT n FROM victims")) == [1, 2, 3]
        assert conn.execute("SELECT to_regclass('made_by_kpi')").fetchone() == (None,)
        assert conn.execute("SELECT is_called FROM victims_seq").fetchone() == (False,)


INJECTIONS = [
    "'; DROP TABLE victims; --",
    '"; DROP TABLE victims; --',
    "\\'; DROP TABLE victims; --",
    "' OR '1'='1",
    "robert'); DELETE FROM victims; --",
    "$$; DROP TABLE victims; $$",
    "%s",
    "%(now)s",
    "%%",
    ":now",
    "$1",
    "?",
    "*/ DROP TABLE victims; /*",
    "é' || (SELECT 'x') || '",
]


def _injection_spec(tmp_path: Path, databases: dict[str, str]) -> Path:
    lines = [
        "exporter:",
        f"  state_dir: {tmp_path / 'state'}",
        "databases:",
        *(f'  {name}: {{dsn: "{dsn}"}}' for name, dsn in databases.items()),
        "kpis:",
    ]
    for database in databases:
        for index, needle in enumerate(INJECTIONS):
            lines += [
                f"  - name: {database}_param_{index}",
                "    type: gauge",
                f"    database: {database}",
                "    interval: 1s",
                # '$$' is the spec's escape for a literal '$'
                f"    params: {{needle: {json.dumps(needle.replace('$', '$$'))}}}",
                # placeholders inside literals and comments stay text; '%' stays a percent
                "    query: >-",
                "      SELECT count(*) AS value FROM victims WHERE name = :needle",
                "      AND ':needle' <> '100%' -- :needle %s",
                "      AND :now > :last_success",
            ]
        collate = ' COLLATE "C"' if database == "pg" else ""
        lines += [
            f"  - name: {database}_cursor_total",
            "    type: counter",
            f"    database: {database}",
            "    interval: 1s",
            "    cursor: c",
            "    start: earliest",
            "    initial_cursor: ''",
            "    batch: 3",
            "    labels: [kind]",
            "    query: >-",
            f"      SELECT c, kind FROM events WHERE c{collate} > :cursor{collate}",
            f"      ORDER BY c{collate} LIMIT :batch",
        ]
    spec = tmp_path / "spec.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def test_injection_strings_through_every_parameter_path(
    pg_schema: tuple[str, str], run_exporter: Any, tmp_path: Path
) -> None:
    """Spec params and cursor values fed back from rows are bound, never formatted: each
    injection string matches exactly its own row, and every table is still there."""
    dsn, _ = pg_schema
    sqlite_path = tmp_path / "inject.db"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE victims (name text)")
        conn.execute("CREATE TABLE events (c text PRIMARY KEY, kind text)")
        for needle in INJECTIONS:
            conn.execute("INSERT INTO victims VALUES (%s)", [needle])
            conn.execute("INSERT INTO events VALUES (%s, 'k')", [needle])
    with sqlite3.connect(sqlite_path) as lite:
        lite.execute("CREATE TABLE victims (name text)")
        lite.execute("CREATE TABLE events (c text PRIMARY KEY, kind text)")
        lite.executemany("INSERT INTO victims VALUES (?)", [(n,) for n in INJECTIONS])
        lite.executemany("INSERT INTO events VALUES (?, 'k')", [(n,) for n in INJECTIONS])
    spec = _injection_spec(tmp_path, {"pg": dsn, "lite": f"sqlite:///{sqlite_path}"})
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready(timeout=60)

    def all_counted() -> str | None:
        text = exporter.metrics()
        totals = [metric(text, f"{db}_cursor_total", kind="k") for db in ("pg", "lite")]
        return text if totals == [float(len(INJECTIONS))] * 2 else None

    text = wait_until(all_counted, 60, what="both cursor KPIs to count every injection row")
    for database in ("pg", "lite"):
        for index, needle in enumerate(INJECTIONS):
            name = f"{database}_param_{index}"
            assert metric(text, name) == 1.0, f"{name} ({needle!r}) matched {metric(text, name)}"
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM victims").fetchone() == (len(INJECTIONS),)
    with sqlite3.connect(sqlite_path) as lite:
        assert lite.execute("SELECT count(*) FROM victims").fetchone() == (len(INJECTIONS),)
