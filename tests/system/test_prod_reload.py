"""Reload: 200 reloads alternating two specs leak no connections or threads; refusals are whole."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from conftest import wait_until

RELOADS = 200


def _value(body: str, series: str) -> float | None:
    match = re.search(rf"^{re.escape(series)} (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else None


def _spec(schema_dsn: str, variant: str, state: Path) -> str:
    """Two specs sharing `stable`; `moving` changes its DSN and pool size every reload."""
    moving_dsn = schema_dsn + ("&connect_timeout=7" if variant == "b" else "")
    moving_size = 3 if variant == "b" else 2
    changing = 2 if variant == "b" else 1
    only = f"only_in_{variant}"
    return f"""
exporter:
  labels: {{service: reload}}
  state_dir: {state}
databases:
  stable:
    dsn: "{schema_dsn}"
    max_connections: 2
  moving:
    dsn: "{moving_dsn}"
    max_connections: {moving_size}
kpis:
  - name: orders_total
    type: counter
    database: stable
    interval: 1s
    query: SELECT count(*) AS value FROM orders
  - name: order_rows_total
    type: counter
    database: stable
    interval: 1s
    cursor: id
    start: earliest
    query: SELECT id FROM orders WHERE id > :cursor ORDER BY id LIMIT :batch
  - name: stable_gauge
    type: gauge
    database: stable
    interval: 1s
    query: SELECT 5 AS value
  - name: changing_gauge
    type: gauge
    database: stable
    interval: 1s
    query: SELECT {changing} AS value
  - name: {only}
    type: gauge
    database: stable
    interval: 1s
    query: SELECT 1 AS value
  - name: moving_gauge
    type: gauge
    database: moving
    interval: 1s
    query: SELECT count(*) AS value FROM orders
"""


@pytest.fixture
def reload_role(pg_schema, postgres_dsn):
    """A login role of its own, so pg_stat_activity counts only this exporter's sessions."""
    dsn, schema = pg_schema
    role = f"kpi_reload_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".orders (id serial PRIMARY KEY)')
        conn.execute(f'INSERT INTO "{schema}".orders DEFAULT VALUES')
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
    role_dsn = dsn.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    assert role in role_dsn, "the test DSN must name the postgres user"
    try:
        yield role_dsn, schema, role
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                [role],
            )
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def _connections(admin_dsn: str, role: str) -> int:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE usename = %s AND application_name = 'kpi-exporter'",
            [role],
        ).fetchone()
    assert row is not None
    return int(row[0])


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _quiet_threads(pid: int) -> int:
    """The fewest threads seen over 2 s: short-lived request and timer threads come and go."""
    counts = []
    for _ in range(10):
        counts.append(_threads(pid))
        time.sleep(0.2)
    return min(counts)


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: a reload never reads half a file


MONOTONIC = [
    'orders_total{service="reload"}',
    'order_rows_total{service="reload"}',
    'kpi_exporter_query_duration_seconds_count{database="stable",kpi="stable_gauge"}',
    'kpi_exporter_query_duration_seconds_count{database="stable",kpi="order_rows_total"}',
    'kpi_exporter_scrapes_total{format="text"}',
    'kpi_exporter_rows_processed_total{database="stable",kpi="order_rows_total"}',
]


def test_200_reloads_leak_nothing_and_keep_counters_monotonic(
    run_exporter, reload_role, postgres_dsn, tmp_path
) -> None:
    dsn, schema, role = reload_role
    state = tmp_path / "state"
    spec = tmp_path / "spec.yaml"
    specs = {v: _spec(dsn, v, state) for v in "ab"}
    _write(spec, specs["a"])
    exporter = run_exporter(["-c", str(spec), "--web.enable-lifecycle"])
    exporter.wait_ready()
    pid = exporter.proc.pid

    def insert_order() -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'INSERT INTO "{schema}".orders DEFAULT VALUES')

    def reload(variant: str) -> None:
        _write(spec, specs[variant])
        answer = requests.post(exporter.url + "/-/reload", timeout=60)
        assert answer.status_code == 200, answer.text

    # warm up: both variants once, so every pool, executor and thread exists
    for variant in "abab" + "a":
        reload(variant)
    time.sleep(3)
    base_threads = _quiet_threads(pid)
    base_connections = _connections(postgres_dsn, role)
    hashes: dict[str, float] = {}
    last: dict[str, float] = {}
    halfway_threads = 0
    for i in range(RELOADS):
        if i == RELOADS // 2:
            time.sleep(3)
            halfway_threads = _quiet_threads(pid)
        variant = "b" if i % 2 == 0 else "a"
        reload(variant)
        if i % 10 == 0:
            insert_order()
        body = exporter.metrics()
        gone = "only_in_a" if variant == "b" else "only_in_b"
        assert not re.search(rf"^{gone}\b", body, re.MULTILINE), f"{gone} still published"
        assert f'kpi="{gone}"' not in body, f"self-metrics of {gone} still published"
        assert _value(body, "kpi_exporter_config_last_reload_successful") == 1.0
        config_hash = _value(body, "kpi_exporter_config_hash")
        assert config_hash is not None
        assert hashes.setdefault(variant, config_hash) == config_hash
        for series in MONOTONIC:
            value = _value(body, series)
            if value is None:
                continue  # not polled yet after start
            assert value >= last.get(series, 0.0), f"{series} went down at reload {i}"
            last[series] = value
        ready = requests.get(exporter.url + "/ready", timeout=10).json()
        for name in ("orders_total", "order_rows_total", "stable_gauge"):
            assert ready["kpis"][name]["state"] != "pending", f"{name} restarted at reload {i}"
    assert hashes["a"] != hashes["b"]
    assert all(series in last for series in MONOTONIC[:3])

    # the counters still count what the database holds, after all that
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".orders').fetchone()
    assert row is not None
    expected = float(row[0])
    wait_until(
        lambda: _value(exporter.metrics(), 'order_rows_total{service="reload"}') == expected,
        20,
        what="the cursor counter to count every order",
    )
    wait_until(
        lambda: _value(exporter.metrics(), 'orders_total{service="reload"}') == expected,
        20,
        what="the database-kept counter to show every order",
    )

    time.sleep(3)
    threads = _quiet_threads(pid)
    connections = _connections(postgres_dsn, role)
    print(
        f"after {RELOADS} reloads: threads {base_threads} -> {halfway_threads} (halfway) -> "
        f"{threads}, connections {base_connections} -> {connections}"
    )
    # The thread pools (scheduler executors, HTTP workers) start idle workers lazily up to
    # their bound, more of them on a loaded machine (a thread dump of a failing run: 11 -> 13
    # idle concurrent.futures workers, nothing else): a leak is growth that goes on, so the
    # second 100 reloads may add at most 3 (a thread per 30 reloads would add more).
    assert threads <= halfway_threads + 3, (base_threads, halfway_threads, threads)
    assert connections <= max(base_connections, 2 + 3), (base_connections, connections)
    assert exporter.proc.poll() is None


def test_bad_spec_is_refused_whole_and_sighup_reloads(run_exporter, tmp_path: Path) -> None:
    from test_production import gauge_spec, make_values_db

    db = tmp_path / "values.db"
    make_values_db(db, {"kept_gauge": 4.0, "added_gauge": 9.0})
    spec = tmp_path / "spec.yaml"
    good = gauge_spec(db, ["kept_gauge"])
    _write(spec, good)
    exporter = run_exporter(["-c", str(spec), "--web.enable-lifecycle"])
    exporter.wait_ready()
    body = exporter.metrics()
    loaded_at = _value(body, "kpi_exporter_config_last_reload_success_timestamp_seconds")
    assert loaded_at is not None

    # a second KPI that is fine plus one broken one: nothing of it may be applied
    broken = gauge_spec(db, ["kept_gauge", "added_gauge"]) + "  - name: bad\n    type: nope\n"
    _write(spec, broken)
    answer = requests.post(exporter.url + "/-/reload", timeout=30)
    assert answer.status_code == 400
    assert "kpis[2]" in answer.text and "type" in answer.text
    body = exporter.metrics()
    assert _value(body, "kpi_exporter_config_last_reload_successful") == 0.0
    assert _value(body, 'kept_gauge{service="prodtest"}') == 4.0
    assert "added_gauge" not in body
    assert "reload_refused" in exporter.output()
    assert requests.get(exporter.url + "/-/reload", timeout=10).status_code == 405
    assert requests.put(exporter.url + "/-/reload", timeout=10).status_code == 405

    _write(spec, gauge_spec(db, ["kept_gauge", "added_gauge"]))
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: _value(exporter.metrics(), 'added_gauge{service="prodtest"}') == 9.0,
        30,
        what="SIGHUP to load the added KPI",
    )
    body = exporter.metrics()
    assert _value(body, "kpi_exporter_config_last_reload_successful") == 1.0
    reloaded_at = _value(body, "kpi_exporter_config_last_reload_success_timestamp_seconds")
    assert reloaded_at is not None and reloaded_at > loaded_at


def test_reload_endpoint_needs_the_lifecycle_flag_and_sighup_does_not(
    run_exporter, tmp_path: Path
) -> None:
    """Without --web.enable-lifecycle POST /-/reload is 403 and changes nothing; SIGHUP reloads."""
    from test_production import gauge_spec, make_values_db

    db = tmp_path / "values.db"
    make_values_db(db, {"kept_gauge": 4.0, "added_gauge": 9.0})
    spec = tmp_path / "spec.yaml"
    _write(spec, gauge_spec(db, ["kept_gauge"]))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    _write(spec, gauge_spec(db, ["kept_gauge", "added_gauge"]))
    answer = requests.post(exporter.url + "/-/reload", timeout=30)
    assert answer.status_code == 403
    assert answer.text == "Lifecycle API is not enabled (start with --web.enable-lifecycle).\n"
    assert "added_gauge" not in exporter.metrics()
    exporter.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: _value(exporter.metrics(), 'added_gauge{service="prodtest"}') == 9.0,
        30,
        what="SIGHUP to load the added KPI",
    )
