"""End to end: `kpi-exporter run` as a subprocess, scraped over HTTP, compared with its SQL."""

from __future__ import annotations

import bisect
import contextlib
import gzip
import json
import math
import random
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, mysql_connect
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse

from exporter import demo
from exporter.spec.loading import load_spec
from exporter.spec.model import Kpi
from exporter.spec.params import placeholders, to_pyformat, to_qmark_mysql

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_parse(text)
        for s in family.samples
    }


def kpi_samples(samples: Samples, metric: str) -> Samples:
    names = {metric, f"{metric}_bucket", f"{metric}_count", f"{metric}_sum"}
    return {k: v for k, v in samples.items() if k[0] in names}


SPEC = """\
exporter:
  labels: {service: shop}
  state_dir: %(state)s
databases:
  app:
    dsn: sqlite:///%(db)s
kpis:
  - name: orders_by_status
    help: Orders by status.
    type: gauge
    database: app
    interval: 1s
    query: SELECT status, count(*) AS value FROM orders GROUP BY status
    labels: [status]
  - name: order_value_usd_total
    type: counter
    database: app
    interval: 1s
    query: SELECT status, sum(amount) AS value FROM orders GROUP BY status
    labels: [status]
  - name: order_amount_usd
    type: histogram
    database: app
    interval: 1s
    sum: total
    query: |
      SELECT '10' AS le, (SELECT count(*) FROM orders WHERE amount <= 10) AS value,
             (SELECT sum(amount) FROM orders) AS total
      UNION ALL SELECT '100', (SELECT count(*) FROM orders WHERE amount <= 100),
             (SELECT sum(amount) FROM orders)
      UNION ALL SELECT '+Inf', (SELECT count(*) FROM orders), (SELECT sum(amount) FROM orders)
  - name: missing_label
    type: gauge
    database: app
    interval: 1s
    query: SELECT count(*) AS value FROM orders
    labels: [region]
  - name: not_a_number
    type: gauge
    database: app
    interval: 1s
    query: SELECT 'many' AS value
  - name: duplicate_labels
    type: gauge
    database: app
    interval: 1s
    query: SELECT 'x' AS status, 1 AS value UNION ALL SELECT 'x', 2
    labels: [status]
  - name: too_many_series
    type: gauge
    database: app
    interval: 1s
    max_series: 2
    query: SELECT status, count(*) AS value FROM orders GROUP BY status
    labels: [status]
  - name: null_values
    type: gauge
    database: app
    interval: 1s
    query: |
      SELECT status, CASE WHEN status = 'paid' THEN NULL ELSE 1 END AS value
      FROM orders GROUP BY status
    labels: [status]
  - name: bad_sql
    type: gauge
    database: app
    interval: 1s
    query: SELECT nope FROM nowhere
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "shop.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, amount REAL)")
    rng = random.Random(1)
    conn.executemany(
        "INSERT INTO orders (status, amount) VALUES (?, ?)",
        [
            (rng.choice(["paid", "open", "refunded"]), round(rng.uniform(1, 300), 2))
            for _ in range(500)
        ],
    )
    conn.commit()
    conn.close()
    spec = tmp_path / "shop.yaml"
    spec.write_text(SPEC % {"db": db, "state": tmp_path / "state"})
    return db, spec


class TestSqliteEndToEnd:
    def test_values_equal_sql_and_bad_results_fail_alone(
        self, shop: tuple[Path, Path], run_exporter: Any
    ) -> None:
        db, spec = shop
        exporter = run_exporter(["-c", str(spec)])
        exporter.wait_ready()
        samples = parse(exporter.metrics())
        conn = sqlite3.connect(db)
        for status, count, total in conn.execute(
            "SELECT status, count(*), sum(amount) FROM orders GROUP BY status"
        ):
            labels = (("service", "shop"), ("status", status))
            assert samples[("orders_by_status", labels)] == count
            assert samples[("order_value_usd_total", labels)] == pytest.approx(total)
        (total_sum,) = conn.execute("SELECT sum(amount) FROM orders").fetchone()
        for le, bound in (("10.0", 10), ("100.0", 100), ("+Inf", 1e308)):
            (count,) = conn.execute(
                "SELECT count(*) FROM orders WHERE amount <= ?", (bound,)
            ).fetchone()
            key = ("order_amount_usd_bucket", (("le", le), ("service", "shop")))
            assert samples[key] == count
        assert samples[("order_amount_usd_sum", (("service", "shop"),))] == pytest.approx(total_sum)
        # bad results: each KPI fails alone, counted under reason=result (bad_sql under sql)
        expected_reason = {
            "missing_label": "result",
            "not_a_number": "result",
            "duplicate_labels": "result",
            "too_many_series": "result",
            "bad_sql": "sql",
        }
        for kpi, reason in expected_reason.items():
            assert samples[("kpi_exporter_kpi_up", (("database", "app"), ("kpi", kpi)))] == 0, kpi
            key = (
                "kpi_exporter_query_errors_total",
                (("database", "app"), ("kpi", kpi), ("reason", reason)),
            )
            assert samples[key] >= 1, kpi
            assert not any(k[0] == kpi for k in samples), kpi  # nothing half-published
        # NULL values: the row is skipped, the KPI succeeds, the skip is counted and logged
        assert samples[("kpi_exporter_kpi_up", (("database", "app"), ("kpi", "null_values")))] == 1
        assert ("null_values", (("service", "shop"), ("status", "paid"))) not in samples
        assert ("null_values", (("service", "shop"), ("status", "open"))) in samples
        key = (
            "kpi_exporter_query_errors_total",
            (("database", "app"), ("kpi", "null_values"), ("reason", "result")),
        )
        assert samples[key] >= 1
        log = exporter.output()
        assert "warning poll_failed kpi=missing_label" in log and "column=region" in log
        assert "warning null_values_skipped kpi=null_values" in log
        ready = requests.get(exporter.url + "/ready", timeout=5).json()
        assert ready["kpis"]["not_a_number"]["state"] == "failed"
        assert "holds str 'many', not a number" in ready["kpis"]["not_a_number"]["last_error"]

    def test_http_surface(self, shop: tuple[Path, Path], run_exporter: Any) -> None:
        _, spec = shop
        exporter = run_exporter(["-c", str(spec)])
        exporter.wait_ready()
        url = exporter.url
        assert requests.get(url + "/health", timeout=5).text == "ok\n"
        assert requests.get(url + "/nope", timeout=5).status_code == 404
        assert requests.post(url + "/metrics", timeout=5).status_code == 405
        assert requests.get(url + "/-/reload", timeout=5).status_code == 405
        page = requests.get(url + "/", timeout=5)
        assert page.headers["Content-Type"].startswith("text/html")
        assert "orders_by_status" in page.text and "FAILING" in page.text
        assert "no such table: nowhere" in page.text or "no such column: nope" in page.text
        # the rules and dashboards this spec generates, linked from the page and served
        from exporter.generation import rule_files

        expected = rule_files.render_files(load_spec([spec]).spec)["prometheus_alerts.yaml"]
        assert 'href="/generated/rules/prometheus_alerts.yaml"' in page.text
        served = requests.get(url + "/generated/rules/prometheus_alerts.yaml", timeout=5)
        assert served.status_code == 200 and served.text == expected
        assert 'href="/generated/dashboards/kpi-exporter-health.json"' in page.text
        board = requests.get(url + "/generated/dashboards/kpi-exporter-health.json", timeout=5)
        assert board.json()["title"]
        assert requests.get(url + "/generated/../../etc/passwd", timeout=5).status_code == 404
        # Prometheus' own Accept and Accept-Encoding: OpenMetrics, gzip, one valid member
        raw = requests.get(
            url + "/metrics",
            headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
            timeout=5,
            stream=True,
        )
        assert raw.headers["Content-Type"].startswith("application/openmetrics-text")
        assert raw.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(raw.raw.read())
        families = {f.name: f for f in om_parse(body.decode())}
        assert families["order_value_usd"].type == "counter"
        plain = requests.get(url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=5)
        assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "Content-Encoding" not in plain.headers
        assert (
            parse(plain.text)[("orders_by_status", (("service", "shop"), ("status", "paid")))] > 0
        )

    def test_once_prints_exposition_and_fails_on_a_failed_kpi(
        self, shop: tuple[Path, Path]
    ) -> None:
        _, spec = shop
        command = [sys.executable, "-m", "exporter.cli", "once", "-c", str(spec)]
        good = subprocess.run(
            [*command, "--kpi", "orders_by_status"], capture_output=True, text=True, timeout=60
        )
        assert good.returncode == 0, good.stderr
        assert any(k[0] == "orders_by_status" for k in parse(good.stdout))
        bad = subprocess.run(
            [*command, "--kpi", "bad_sql"], capture_output=True, text=True, timeout=60
        )
        assert bad.returncode == 1

    def test_dsn_file_and_params(self, shop: tuple[Path, Path], tmp_path: Path) -> None:
        db, _ = shop
        secret = tmp_path / "dsn"
        secret.write_text(f"sqlite:///{db}\n")
        spec = tmp_path / "params.yaml"
        spec.write_text(
            f"databases:\n  app: {{dsn_file: {secret}}}\n"
            "kpis:\n  - name: big_orders\n    type: gauge\n    database: app\n"
            "    interval: 1m\n    params: {floor: 250, state: paid}\n"
            "    query: SELECT count(*) AS value FROM orders WHERE amount > :floor"
            " AND status = :state\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "exporter.cli", "once", "-c", str(spec)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        (expected,) = (
            sqlite3.connect(db)
            .execute("SELECT count(*) FROM orders WHERE amount > 250 AND status = 'paid'")
            .fetchone()
        )
        assert parse(result.stdout)[("big_orders", ())] == expected

    def test_check_connect_reports_missing_columns(self, shop: tuple[Path, Path]) -> None:
        _, spec = shop
        result = subprocess.run(
            [sys.executable, "-m", "exporter.cli", "check", "--connect", "-c", str(spec)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "kpi missing_label (database app): label column 'region' is missing" in result.stderr
        assert "kpi bad_sql (database app): query failed (sql)" in result.stderr
        assert "orders_by_status" not in result.stderr


def ground_truth(kpi: Kpi, rows: list[dict[str, Any]]) -> Samples:
    """What a KPI must publish for `rows` (all of its query's rows), computed independently."""
    expected: Samples = defaultdict(float)
    const = ("service", "demo")
    for row in rows:
        labels = tuple((name, "" if row[name] is None else str(row[name])) for name in kpi.labels)
        value_column = kpi.value_column
        value = row[value_column] if value_column else 1
        if value is None:
            continue
        key = tuple(sorted((const, *labels)))
        if kpi.type == "histogram" and kpi.cursor:
            bounds = list(kpi.buckets or [])
            index = bisect.bisect_left(bounds, float(value))
            for i, bound in enumerate([*bounds, math.inf]):
                le = "+Inf" if bound == math.inf else repr(float(bound))
                bucket_key = tuple(sorted((*key, ("le", le))))
                expected[(kpi.name + "_bucket", bucket_key)] += 1 if index <= i else 0
            expected[(kpi.name + "_count", key)] += 1
            expected[(kpi.name + "_sum", key)] += float(value)
        elif kpi.cursor:
            expected[(kpi.name, key)] += float(value)
        else:
            expected[(kpi.name, key)] = float(value)
    return dict(expected)


def run_query(conn: Any, kpi: Kpi, now: float) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "now": now,
        "last_success": 0.0,
        "cursor": kpi.initial_cursor,
        "tiebreak": 0,
        "batch": 10**9,
        "settled": now - (kpi.settle or 0),
    }
    used = {k: v for k, v in params.items() if k in placeholders(kpi.query)}
    if hasattr(conn, "execute"):  # psycopg
        cursor = conn.execute(to_pyformat(kpi.query), used)
        names = [d.name for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    sql, order = to_qmark_mysql(kpi.query)  # MariaDB Connector/Python binds by position
    cursor = conn.cursor()
    cursor.execute(sql, tuple(used[name] for name in order))
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    cursor.close()
    return rows


@contextlib.contextmanager
def demo_database(engine: str, request: Any) -> Iterator[tuple[str, Any]]:
    """A fresh schema (PostgreSQL) or database (MariaDB): its DSN and an autocommit connection."""
    if engine == "postgresql":
        import psycopg

        dsn, _ = request.getfixturevalue("pg_schema")
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield dsn, conn
        return
    dsn, name = request.getfixturevalue("mysql_database")
    with contextlib.closing(mysql_connect(dsn, name)) as conn:
        yield dsn, conn


class TestDemoOnServers:
    """The demo spec, unchanged, on PostgreSQL and MariaDB with the demo schema: every KPI
    equals its SQL."""

    @pytest.mark.parametrize(
        ("engine", "dialect"), [("postgresql", "postgresql"), ("mariadb", "mysql")]
    )
    def test_every_kpi_equals_sql(
        self, engine: str, dialect: str, request: Any, tmp_path: Path, run_exporter: Any
    ) -> None:
        with demo_database(engine, request) as (dsn, conn):
            seeded_at = time.time() - 120
            demo.create_schema(conn, dialect)
            demo.seed(conn, dialect, seeded_at, random.Random(11))
            before = time.time()
            exporter = run_exporter(
                ["-c", str(ROOT / "config/demo.yaml")],
                env={"KPI_DEMO_DSN": dsn, "KPI_STATE_DIR": str(tmp_path / "state")},
            )
            exporter.wait_ready(timeout=60)
            ready = requests.get(exporter.url + "/ready", timeout=5).json()
            failed = {k: v["last_error"] for k, v in ready["kpis"].items() if v["state"] != "ok"}
            assert not failed
            samples = parse(exporter.metrics())
            after = time.time()
            spec = load_spec([ROOT / "config/demo.yaml"], env={"KPI_DEMO_DSN": dsn}).spec
            compared = 0
            for kpi in spec.kpis:
                truth = ground_truth(kpi, run_query(conn, kpi, before))
                if ground_truth(kpi, run_query(conn, kpi, after)) != truth:
                    continue  # a time-window KPI whose window crossed a row while we looked
                got = {
                    k: v
                    for k, v in kpi_samples(samples, kpi.name).items()
                    if not k[0].endswith("_created")
                }
                assert got.keys() == truth.keys(), kpi.name
                for key, value in truth.items():
                    assert got[key] == pytest.approx(value), (kpi.name, key)
                compared += 1
        assert compared >= len(spec.kpis) - 2, "too few KPIs had a stable ground truth"
        assert json.dumps(ready)  # the readiness document is JSON
