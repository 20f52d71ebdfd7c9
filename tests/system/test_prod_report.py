"""A real Prometheus scrapes the exporter through TLS and basic auth; `report` reads it back."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, RunningPrometheus, exporter_command, free_port, wait_until
from test_production import (
    PASSWORD,
    bcrypt_hash,
    gauge_spec,
    make_pki,
    make_values_db,
)

from exporter.generation.report import PrometheusApi, PrometheusError

GAUGES = {
    "conversion_gauge": 0.97,  # target above 0.95: on target
    "latency_gauge": 3.0,  # target below 2: above target, then 1.5: on target
    "signups_gauge": 10.0,  # target above 20: below target, then 12: still below, rising
    "plain_gauge": 7.0,  # no target
}
TARGETS = {
    "conversion_gauge": "{value: 0.95, direction: above}",
    "latency_gauge": "{value: 2, direction: below}",
    "signups_gauge": "{value: 20, direction: above}",
}


def _spec(db: Path) -> str:
    text = gauge_spec(db, sorted(GAUGES))
    for name, target in TARGETS.items():
        marker = f"WHERE name = '{name}'\n"
        text = text.replace(marker, marker + f"    target: {target}\n")
    text = text.replace(
        "  labels: {service: prodtest}\n", "  labels: {service: prodtest}\n  scrape_interval: 1s\n"
    )
    counters = "".join(
        f"""
  - name: {name}
    type: counter
    database: app
    interval: 1s
    query: SELECT v AS value FROM kpi_values WHERE name = '{name}'
"""
        for name in ("good_total", "all_total")
    )
    return (
        text
        + counters
        + """
    target: {value: 100, direction: below}
ratios:
  - name: good_ratio
    good: good_total
    total: [all_total]
    window: 1m
    target: {value: 0.9, direction: above}
"""
    )


def value(prometheus: RunningPrometheus, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def _set(db: Path, **values: float) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "UPDATE kpi_values SET v = ? WHERE name = ?", [(v, k) for k, v in values.items()]
        )


def _report(spec: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*exporter_command(), "report", "-c", str(spec), "--prometheus", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_prometheus_scrapes_through_tls_and_auth_and_report_reads_it(
    run_exporter, run_prometheus, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    db = tmp_path / "values.db"
    make_values_db(db, {**GAUGES, "good_total": 0.0, "all_total": 0.0})
    spec = tmp_path / "spec.yaml"
    spec.write_text(_spec(db))
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"basic_auth_users:\n  alice: {bcrypt_hash(PASSWORD)}\n"
    )
    exporter = run_exporter(["-c", str(spec), "--web.config.file", str(web)])
    (tmp_path / "password").write_text(PASSWORD)
    (tmp_path / "wrong").write_text("not the password")
    target = f"127.0.0.1:{exporter.port}"
    scrape = "scrape_configs:\n" + "".join(
        f"""  - job_name: {job}
    scheme: https
    tls_config: {{ca_file: {pki.ca}}}
    basic_auth: {{username: alice, password_file: {tmp_path / password}}}
    static_configs: [{{targets: ["{target}"]}}]
"""
        for job, password in (("kpi-exporter", "password"), ("wrong-password", "wrong"))
    )
    prometheus = run_prometheus(
        tmp_path,
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n" + scrape,
    )
    stop_counting = threading.Event()

    def count_events() -> None:
        good = total = 0.0
        while not stop_counting.wait(0.5):
            good, total = good + 19, total + 20
            _set(db, good_total=good, all_total=total)

    counter = threading.Thread(target=count_events, daemon=True)
    counter.start()
    try:

        def scraped() -> bool:
            if prometheus.proc.poll() is not None:
                raise AssertionError(prometheus.output())
            try:
                return value(prometheus, 'up{job="kpi-exporter"}') == 1.0 and all(
                    value(prometheus, f'{name}{{job="kpi-exporter"}}') == expected
                    for name, expected in GAUGES.items()
                )
            except requests.RequestException:
                return False

        wait_until(scraped, 60, what="Prometheus to scrape every gauge through TLS and basic auth")
        first_seen = time.time()
        # the same exporter, scraped with a wrong password, is down with a 401
        targets = requests.get(prometheus.url + "/api/v1/targets", timeout=10).json()
        wrong = wait_until(
            lambda: [
                t
                for t in requests.get(prometheus.url + "/api/v1/targets", timeout=10).json()[
                    "data"
                ]["activeTargets"]
                if t["labels"]["job"] == "wrong-password" and t["health"] == "down"
            ],
            30,
            what="the wrong-password target to be down",
        )
        assert "401" in wrong[0]["lastError"], wrong
        assert targets["status"] == "success"
        assert value(prometheus, 'up{job="wrong-password"}') == 0.0

        time.sleep(6)  # a stretch of history with the first values
        changed = time.time()
        _set(db, latency_gauge=1.5, signups_gauge=12.0)
        wait_until(
            lambda: (
                value(prometheus, 'signups_gauge{job="kpi-exporter"}') == 12.0
                and value(prometheus, 'latency_gauge{job="kpi-exporter"}') == 1.5
            ),
            30,
            what="Prometheus to see the new values",
        )
        wait_until(
            lambda: (
                (
                    value(
                        prometheus,
                        'sum(rate(good_total{job="kpi-exporter"}[1m])) / '
                        'sum(rate(all_total{job="kpi-exporter"}[1m]))',
                    )
                    or 0
                )
                > 0.9
            ),
            60,
            what="the ratio to have data",
        )
        # one range ago must land inside the first stretch
        back = time.time() - (first_seen + changed) / 2
        result = _report(spec, prometheus.url, "--range", f"{back:.0f}s", "--format", "json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        rows = {row["kpi"]: row for row in data["kpis"]}
        assert set(rows) == {*GAUGES, "good_total", "all_total", "good_ratio"}

        signups = rows["signups_gauge"]
        assert (signups["current"], signups["previous"]) == (12.0, 10.0)
        assert signups["trend"] == "up" and signups["change"] == pytest.approx(0.2)
        assert signups["status"] == "below_target" and signups["towards_target"] is True
        latency = rows["latency_gauge"]
        assert (latency["current"], latency["previous"]) == (1.5, 3.0)
        assert latency["trend"] == "down" and latency["status"] == "on_target"
        assert latency["towards_target"] is True
        assert latency["maximum"] == 3.0 and latency["minimum"] == 1.5
        conversion = rows["conversion_gauge"]
        assert (conversion["current"], conversion["trend"]) == (0.97, "flat")
        assert conversion["status"] == "on_target"
        assert rows["plain_gauge"]["status"] == "no_target"
        assert rows["plain_gauge"]["current"] == 7.0
        # Live rates depend on the counting thread's pace and on when each counter was polled
        # (the ratio read 0.87 on a loaded machine, 19 of 20 events being good), so their
        # values are checked on a hand-written history instead (test_report_values.py; a
        # flipped ratio fails there). Here: both rows are there, with a status for their value.
        ratio = rows["good_ratio"]
        assert ratio["kind"] == "ratio" and ratio["current"] > 0, ratio
        assert ratio["status"] == ("on_target" if ratio["current"] >= 0.9 else "below_target")
        rate = rows["all_total"]
        assert rate["kind"] == "counter" and rate["current"] > 0, rate
        assert rate["status"] == ("on_target" if rate["current"] <= 100 else "above_target")
        statuses = [row["status"] for row in data["kpis"]]
        assert data["summary"].startswith(f"{len(rows)} KPIs over")
        assert f"{statuses.count('on_target')} on target" in data["summary"]
        assert f"{statuses.count('below_target')} below target" in data["summary"]

        table = _report(spec, prometheus.url, "--range", f"{back:.0f}s")
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[:2] == ["KPI", "kind"]
        assert lines[-1].startswith(f"{len(rows)} KPIs over ")
        assert "below target" in lines[-1] and "without target" in lines[-1]
        assert any(line.startswith("signups_gauge") and "below_target" in line for line in lines)

        exported = _report(spec, prometheus.url, "--range", f"{back:.0f}s", "--format", "csv")
        assert exported.returncode == 0, exported.stderr
        csv_rows = {row["kpi"]: row for row in csv.DictReader(io.StringIO(exported.stdout))}
        assert set(csv_rows) == set(rows)
        assert float(csv_rows["signups_gauge"]["current"]) == 12.0
        assert csv_rows["signups_gauge"]["status"] == "below_target"

        # Prometheus refusing a query is an error with its reason, not a crash
        api = PrometheusApi(prometheus.url, timeout=10)
        with pytest.raises(PrometheusError, match="bad_data"):
            api.instant("sum(", time.time())
    finally:
        stop_counting.set()
        counter.join(timeout=5)


def test_report_errors_are_clear(run_exporter, tmp_path: Path) -> None:
    db = tmp_path / "values.db"
    make_values_db(db, GAUGES)
    spec = tmp_path / "spec.yaml"
    spec.write_text(gauge_spec(db, sorted(GAUGES)))
    nobody = f"http://127.0.0.1:{free_port()}"
    result = _report(spec, nobody, "--timeout", "3s")
    assert result.returncode == 1
    assert "cannot reach Prometheus" in result.stderr
    assert "Traceback" not in result.stderr
    # something that is not a Prometheus API: the exporter itself
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()
    result = _report(spec, exporter.url)
    assert result.returncode == 1
    assert "is this a Prometheus server?" in result.stderr
    bad_range = _report(spec, exporter.url, "--range", "soon")
    assert bad_range.returncode == 2
