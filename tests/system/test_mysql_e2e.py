"""MariaDB end to end: `kpi-exporter run`, `once` and `check --connect` as subprocesses; every
KPI kind equals its SQL run directly; timeouts die on the server; reload; self-metrics; no
password in any output. (Cursor KPIs across SIGKILL: tests/test_cursor_e2e.py.)"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, free_port, mysql_connect, wait_until
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.mysql

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
PASSWORD = f"pw-{uuid.uuid4().hex[:12]}-S3cr3t"
STATUSES = ["paid", "open", "café ☕", "日本"]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "service"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def rows(conn: Any, sql: str, values: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    cursor.execute(sql, values)
    found = list(cursor.fetchall()) if cursor.description else []
    cursor.close()
    return found


# a scrape while the exporter starts, or a sample not exported yet: not yet
RETRY = (requests.RequestException, KeyError)


def kpi(name: str, query: str, kind: str = "gauge", extra: str = "", database: str = "maria"):
    return (
        f"  - name: {name}\n    type: {kind}\n    database: {database}\n    interval: 1s\n"
        f"{extra}    query: {json.dumps(query)}\n"
    )


KPIS = (
    kpi(
        "orders_by_status",
        "SELECT status, count(*) AS value FROM orders GROUP BY status",
        extra="    labels: [status]\n",
    )
    + kpi(
        "order_value_usd_total",
        "SELECT status, sum(amount) AS value FROM orders GROUP BY status",
        kind="counter",
        extra="    labels: [status]\n",
    )
    + kpi(
        "order_amount_usd",
        "SELECT '10' AS le, (SELECT count(*) FROM orders WHERE amount <= 10) AS value,"
        " (SELECT sum(amount) FROM orders) AS total"
        " UNION ALL SELECT '100', (SELECT count(*) FROM orders WHERE amount <= 100),"
        " (SELECT sum(amount) FROM orders)"
        " UNION ALL SELECT '+Inf', (SELECT count(*) FROM orders), (SELECT sum(amount) FROM orders)",
        kind="histogram",
        extra="    sum: total\n",
    )
    + kpi("largest_id", "SELECT max(big) AS value FROM orders")
    + kpi(
        "big_open_orders",
        "SELECT count(*) AS value FROM orders WHERE amount > :floor AND status = :state",
        extra="    params: {floor: 250, state: open}\n",
    )
    + kpi("missing_label", "SELECT count(*) AS value FROM orders", extra="    labels: [region]\n")
    + kpi("bad_sql", "SELECT nope FROM nowhere")
)


@pytest.fixture
def shop(mysql_database: tuple[str, str], tmp_path: Path) -> tuple[str, str, Path]:
    dsn, name = mysql_database
    with contextlib.closing(mysql_connect(dsn, name)) as conn:
        rows(
            conn,
            "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, status VARCHAR(20)"
            " CHARACTER SET utf8mb4 NOT NULL, amount DECIMAL(10,2) NOT NULL,"
            " big BIGINT UNSIGNED NOT NULL)",
        )
        cursor = conn.cursor()
        cursor.executemany(
            "INSERT INTO orders (status, amount, big) VALUES (?, ?, ?)",
            [
                (STATUSES[i % 4], Decimal(f"{(i * 37) % 300}.{i % 100:02d}"), 2**63 + i)
                for i in range(500)
            ],
        )
        cursor.close()
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "exporter:\n  labels: {service: shop}\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        f'databases:\n  maria: {{dsn: "{dsn}", max_connections: 2}}\n'
        f"kpis:\n{KPIS}"
    )
    return dsn, name, spec


def truth(conn: Any) -> Samples:
    """Every sample the gauge, counter and histogram KPIs must publish, by SQL run directly."""
    expected: Samples = {}
    for status, count, total in rows(
        conn, "SELECT status, count(*), sum(amount) FROM orders GROUP BY status"
    ):
        expected[("orders_by_status", (("status", status),))] = count
        expected[("order_value_usd_total", (("status", status),))] = float(total)
    for le, bound in (("10.0", 10), ("100.0", 100), ("+Inf", 10**9)):
        ((count,),) = rows(conn, "SELECT count(*) FROM orders WHERE amount <= ?", (bound,))
        expected[("order_amount_usd_bucket", (("le", le),))] = count
    ((total, count, big),) = rows(conn, "SELECT sum(amount), count(*), max(big) FROM orders")
    expected[("order_amount_usd_sum", ())] = float(total)
    expected[("order_amount_usd_count", ())] = count
    expected[("largest_id", ())] = float(big)
    ((open_big,),) = rows(
        conn, "SELECT count(*) FROM orders WHERE amount > 250 AND status = 'open'"
    )
    expected[("big_open_orders", ())] = open_big
    return expected


def test_every_kind_equals_sql_once_check_and_reload(
    shop: tuple[str, str, Path], run_exporter: Any
) -> None:
    dsn, name, spec = shop
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    failed = ("kpi_exporter_kpi_up", (("database", "maria"), ("kpi", "bad_sql")))
    samples = wait_until(
        lambda: (s := parse(exporter.metrics())) and ("largest_id", ()) in s and failed in s and s,
        30,
        what="every KPI polled",
        retry_on=RETRY,
    )
    with contextlib.closing(mysql_connect(dsn, name)) as conn:
        expected = truth(conn)
    for key, value in expected.items():
        assert samples[key] == pytest.approx(value), key
    assert samples[("largest_id", ())] == float(2**63 + 499)  # BIGINT UNSIGNED beyond int64
    # self-metrics: the database is up, failures are counted by reason, each fails alone
    assert samples[("kpi_exporter_database_up", (("database", "maria"),))] == 1
    for failing, reason in (("missing_label", "result"), ("bad_sql", "sql")):
        assert samples[("kpi_exporter_kpi_up", (("database", "maria"), ("kpi", failing)))] == 0
        key = (
            "kpi_exporter_query_errors_total",
            (("database", "maria"), ("kpi", failing), ("reason", reason)),
        )
        assert samples[key] >= 1, failing
    assert (
        samples[("kpi_exporter_kpi_up", (("database", "maria"), ("kpi", "orders_by_status")))] == 1
    )
    duration = (
        "kpi_exporter_query_duration_seconds_count",
        (("database", "maria"), ("kpi", "orders_by_status")),
    )
    assert samples[duration] >= 1
    ready = requests.get(exporter.url + "/ready", timeout=5).json()["kpis"]
    assert "doesn't exist" in ready["bad_sql"]["last_error"]
    # reload on SIGHUP: a new KPI appears, a removed one goes
    spec.write_text(
        spec.read_text().replace(kpi("bad_sql", "SELECT nope FROM nowhere"), "")
        + kpi("order_count", "SELECT count(*) AS value FROM orders")
    )
    exporter.proc.send_signal(signal.SIGHUP)
    reloaded = wait_until(
        lambda: (s := parse(exporter.metrics())) and ("order_count", ()) in s and s,
        30,
        what="the reloaded KPI",
        retry_on=RETRY,
    )
    assert reloaded[("order_count", ())] == 500
    assert ("kpi_exporter_kpi_up", (("database", "maria"), ("kpi", "bad_sql"))) not in reloaded
    # once: the same values, exit 1 when a KPI fails
    command = [sys.executable, "-m", "exporter.cli", "once", "-c", str(spec)]
    good = subprocess.run(
        [*command, "--kpi", "orders_by_status"], capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stderr
    for key, value in parse(good.stdout).items():
        if key[0] == "orders_by_status":
            assert value == expected[key]
    bad = subprocess.run(
        [*command, "--kpi", "missing_label"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    # check --connect: runs every query once, reports the broken ones
    spec.write_text(spec.read_text() + kpi("bad_sql", "SELECT nope FROM nowhere"))
    check = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "--connect", "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 2, check.stderr
    assert "kpi missing_label (database maria): label column 'region' is missing" in check.stderr
    assert "kpi bad_sql (database maria): query failed (sql)" in check.stderr
    assert "orders_by_status" not in check.stderr


def test_timeout_dies_on_the_server_and_no_password_leaks(
    mysql_database: tuple[str, str], mysql_dsn: str, run_exporter: Any, tmp_path: Path
) -> None:
    dsn, name = mysql_database
    user = f"u_{uuid.uuid4().hex[:8]}"
    marker = f"slow_{uuid.uuid4().hex[:8]}"
    admin = mysql_connect(mysql_dsn)
    rows(admin, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
    rows(admin, f"GRANT SELECT ON `{name}`.* TO '{user}'@'%'")
    try:
        port = dsn.rsplit(":", 1)[1].split("/")[0]
        good = f"mysql://{user}:{PASSWORD}@127.0.0.1:{port}/{name}"
        wrong = f"mysql://{user}:{PASSWORD}x@127.0.0.1:{port}/{name}"
        closed = f"mysql://{user}:{PASSWORD}@127.0.0.1:{free_port()}/{name}"
        spec = tmp_path / "spec.yaml"
        spec.write_text(
            f"exporter:\n  state_dir: {tmp_path / 'state'}\n  pool_timeout: 1s\n"
            "databases:\n"
            f'  maria: {{dsn: "{good}", max_connections: 1}}\n'
            f'  wrong: {{dsn: "{wrong}"}}\n'
            f'  closed: {{dsn: "{closed}", connect_timeout: 1s}}\n'
            "kpis:\n"
            + kpi("slow", f"SELECT SLEEP(30) AS `{marker}`, 1 AS value", extra="    timeout: 1s\n")
            + kpi("denied", "SELECT count(*) AS value FROM mysql.user")
            + kpi("wrong_password", "SELECT 1 AS value", database="wrong")
            + kpi("unreachable", "SELECT 1 AS value", database="closed")
        )
        exporter = run_exporter(["-c", str(spec), "--log-level", "debug"])
        exporter.wait_ready(timeout=60)
        seen: dict[int, float] = {}  # server connection id -> longest run seen
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(seen) < 3:
            for ident, seconds in rows(
                admin,
                "SELECT ID, TIME_MS / 1000 FROM information_schema.PROCESSLIST"
                " WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
                (f"%{marker}%",),
            ):
                seen[int(ident)] = max(seen.get(int(ident), 0.0), float(seconds))
            time.sleep(0.05)
        text = wait_until(
            lambda: (
                (t := exporter.metrics())
                and parse(t).get(
                    (
                        "kpi_exporter_query_errors_total",
                        (("database", "maria"), ("kpi", "slow"), ("reason", "timeout")),
                    ),
                    0,
                )
                >= 3
                and t
            ),
            30,
            what="three timeouts",
            retry_on=RETRY,
        )
        samples = parse(text)
        assert seen and max(seen.values()) < 2.0, f"a timed-out query ran on: {seen}"
        for kpi_name, database, reason in (
            ("denied", "maria", "sql"),
            ("wrong_password", "wrong", "connection"),
            ("unreachable", "closed", "connection"),
        ):
            key = (
                "kpi_exporter_query_errors_total",
                (("database", database), ("kpi", kpi_name), ("reason", reason)),
            )
            assert samples.get(key, 0) >= 1, kpi_name
        assert samples[("kpi_exporter_database_up", (("database", "wrong"),))] == 0
        outputs = {"metrics": text}
        for path in ("/", "/ready"):
            outputs[path] = requests.get(exporter.url + path, timeout=10).text
        assert "Access denied" in outputs["/ready"]
        exporter.stop()
        outputs["log"] = exporter.output()
        for args in (["check", "--connect"], ["once"]):
            done = subprocess.run(
                [sys.executable, "-m", "exporter.cli", *args, "-c", str(spec)],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
            outputs[" ".join(args)] = done.stdout + done.stderr
        assert "wrong_password" in outputs["check --connect"]
        for where, output in outputs.items():
            assert PASSWORD not in output, f"the password leaked into {where}"
            assert PASSWORD[3:-3] not in output, f"part of the password leaked into {where}"
    finally:
        rows(admin, f"DROP USER '{user}'@'%'")
        admin.close()
