"""The exporter's health alerts backtested on a real exporter's live history.

They read the exporter's own series (`up`, kpi_exporter_kpi_up, …), which a backfill cannot
write, so this test makes the history live: a real `kpi-exporter run` over a SQLite file, a real
Prometheus scraping it every second, and one cause of trouble at a time on a recorded timeline:

- database: the file's directory is moved away, then back (KPIs failing, database down, stale);
- reload: a bad spec and SIGHUP (refused), then the good spec and SIGHUP;
- freeze: SIGSTOP, then SIGCONT, by the exporter's PID (scrapes fail: up == 0).

Then `kpi-exporter backtest` evaluates the generated alerts over that window, and each health
alert must fire during every window of its cause (from the break until Prometheus shows health
again, plus a step) and have no episode outside them, except those that
rules/alertmanager.example.yml's inhibitions explain (an alert silenced by an alert of the
cause firing at the same time).

KpiExporterAbsent is only checked to stay quiet here (the target never leaves discovery, even
frozen): its `for` is 5 minutes and it needs the target gone from discovery, which would add
more than 5.5 minutes to a test of about 6."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml
from conftest import ROOT, RunningPrometheus, exporter_command, scraping, wait_until

STEP = 30.0  # the health group's evaluation interval: backtest's step
FOR = 60.0  # the longest `for` of the alerts a cause must fire (30 s for KpiFailing here)
POLL = 2  # the KPIs' interval: stale after three polls, 6 s
MARGIN = 5.0  # seconds a cause holds past the step its alerts fire at
# An episode ends at the first step its expr is gone: up to a step after Prometheus shows the
# repair (10 s of margin for a loaded machine). The database's alerts resolve only when the
# exporter retries, and its retry backoff doubles with each failure (README, Failures): after
# the repair it waits up to the window's length plus a poll, so each window runs from the
# break to when Prometheus shows health again, recorded by polling the raw series.
SLACK = STEP + 10
GAP = 10.0  # seconds of health between causes, once Prometheus shows the repair
JOB = 'job="kpi-exporter"'
KPIS = ("open_orders", "orders_total")
HEALTH = {
    "KpiExporterAbsent",
    "KpiExporterDown",
    "KpiExporterKpiFailing",
    "KpiExporterKpiStale",
    "KpiExporterDatabaseDown",
    "KpiExporterReloadFailed",
}
# Which alerts each cause must fire: every alert its windows explain.
CAUSES = {
    "database": {"KpiExporterKpiFailing", "KpiExporterDatabaseDown", "KpiExporterKpiStale"},
    "reload": {"KpiExporterReloadFailed"},
    "freeze": {"KpiExporterDown"},
}
# What Prometheus shows once a cause took effect (each expr must return `count` series) and
# once it is repaired: hand-written from the self-metrics' meaning, not from the rules.
SYMPTOMS = {
    "database": [
        (f"kpi_exporter_database_up{{{JOB}}} == 0", 1),
        (f"kpi_exporter_kpi_up{{{JOB}}} == 0", len(KPIS)),
        (f"time() - kpi_exporter_last_success_timestamp_seconds{{{JOB}}} > {3 * POLL}", len(KPIS)),
    ],
    "reload": [(f"kpi_exporter_config_last_reload_successful{{{JOB}}} == 0", 1)],
    "freeze": [(f"up{{{JOB}}} == 0", 1)],
}
HEALTHY = [
    (f"up{{{JOB}}} == 1", 1),
    (f"kpi_exporter_database_up{{{JOB}}} == 1", 1),
    (f"kpi_exporter_kpi_up{{{JOB}}} == 1", len(KPIS)),
    (f"time() - kpi_exporter_last_success_timestamp_seconds{{{JOB}}} < {3 * POLL}", len(KPIS)),
    (f"kpi_exporter_config_last_reload_successful{{{JOB}}} == 1", 1),
]

SPEC = """
exporter:
  labels: {{service: shop}}
  scrape_interval: 1s
databases:
  app: {{dsn: "sqlite:///{db}"}}
kpis:
  - name: orders_total
    type: counter
    database: app
    interval: {poll}s
    query: SELECT count(*) AS value FROM orders
  - name: open_orders
    type: gauge
    database: app
    interval: {poll}s
    query: SELECT count(*) AS value FROM orders WHERE open = 1
"""
BAD_SPEC = "kpis:\n  - name: orders_total\n    type: counter\n"  # no database, no query


def _showing(prometheus: RunningPrometheus, checks: list[tuple[str, int]]) -> bool:
    return all(len(prometheus.query(expr)) == count for expr, count in checks)


def _wait_showing(
    prometheus: RunningPrometheus, checks: list[tuple[str, int]], what: str, timeout: float
) -> float:
    """When Prometheus first showed every check (bounded wait)."""

    def shown() -> float | None:
        assert prometheus.proc.poll() is None, f"prometheus exited:\n{prometheus.output()}"
        return time.time() if _showing(prometheus, checks) else None

    return wait_until(shown, timeout, 0.5, what=what, retry_on=(requests.RequestException,))


def _inject(
    prometheus: RunningPrometheus,
    since: float,
    cause: str,
    do: Callable[[], None],
    undo: Callable[[], None],
) -> tuple[float, float, float]:
    """Break; hold until backtest's steps (since + k * STEP) have seen every symptom for FOR,
    and MARGIN more; repair, wait for health and GAP more. Returns when the break was made,
    when it was repaired and when Prometheus first showed health again."""
    start = time.time()
    do()
    try:
        onset = _wait_showing(prometheus, SYMPTOMS[cause], f"the symptoms of {cause}", 60)
        first = since + math.ceil((onset - since) / STEP) * STEP
        time.sleep(max(0.0, first + FOR + MARGIN - time.time()))
    finally:
        undo()
    end = time.time()
    # bounded by the backoff after the longest hold: the window's length and a poll
    recovered = _wait_showing(prometheus, HEALTHY, f"health after {cause}", end - start + 60)
    time.sleep(GAP)
    return start, end, recovered


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for matcher in matchers:
        found = re.fullmatch(r'(\w+)\s*(=~|!~|!=|=)\s*"(.*)"', matcher)
        assert found, matcher
        name, op, value = found.groups()
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def _inhibited(target: dict[str, str], source: dict[str, str], rules: list[dict]) -> bool:
    """Whether the example Alertmanager config silences `target` while `source` fires."""
    return any(
        _matches(rule["source_matchers"], source)
        and _matches(rule["target_matchers"], target)
        and all(source.get(name, "") == target.get(name, "") for name in rule.get("equal", []))
        for rule in rules
    )


def _rule_labels(spec: Path, directory: Path) -> dict[str, dict[str, str]]:
    """The static labels of each generated alert (one rule per alert for this spec)."""
    subprocess.run(
        [*exporter_command(), "generate", "rules", "-c", str(spec), "-o", str(directory)],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    labels: dict[str, dict[str, str]] = {}
    document = yaml.safe_load((directory / "prometheus_alerts.yaml").read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["alert"] not in labels, rule["alert"]
                labels[rule["alert"]] = rule.get("labels", {})
    return labels


def test_health_alerts_fire_on_their_causes_in_live_history(
    tmp_path: Path, run_exporter: Any, run_prometheus: Any
) -> None:
    data = tmp_path / "db"
    data.mkdir()
    with sqlite3.connect(data / "app.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, open INTEGER)")
        conn.executemany("INSERT INTO orders (open) VALUES (?)", [(1,), (0,), (1,)])
    conn.close()
    spec = tmp_path / "spec.yaml"
    good = SPEC.format(db=data / "app.db", poll=POLL)
    spec.write_text(good)

    exporter = run_exporter(["-c", str(spec)], env={"KPI_STATE_DIR": str(tmp_path / "state")})
    exporter.wait_ready(timeout=60)
    prometheus = run_prometheus(tmp_path / "prometheus", scraping(exporter.port))
    prometheus.wait_ready()
    _wait_showing(prometheus, HEALTHY, "a healthy first scrape", 60)
    since = time.time()
    time.sleep(GAP)

    away = tmp_path / "db-away"

    def move(source: Path, target: Path) -> None:
        source.rename(target)

    windows = {
        "database": _inject(
            prometheus, since, "database", lambda: move(data, away), lambda: move(away, data)
        ),
    }

    def reload(text: str) -> None:
        spec.write_text(text)
        os.kill(exporter.proc.pid, signal.SIGHUP)

    windows["reload"] = _inject(
        prometheus, since, "reload", lambda: reload(BAD_SPEC), lambda: reload(good)
    )
    windows["freeze"] = _inject(
        prometheus,
        since,
        "freeze",
        lambda: os.kill(exporter.proc.pid, signal.SIGSTOP),
        lambda: os.kill(exporter.proc.pid, signal.SIGCONT),
    )
    # the last episode must be seen ending: a step past the last repair
    time.sleep(max(0.0, windows["freeze"][2] + STEP + MARGIN - time.time()))
    until = time.time()
    assert exporter.proc.poll() is None, exporter.output()

    done = subprocess.run(
        [
            *exporter_command(),
            "backtest",
            "-c",
            str(spec),
            "--prometheus",
            prometheus.url,
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = {a["alert"]: a["episodes"] for a in json.loads(done.stdout)["alerts"]}
    assert set(report) == HEALTH, sorted(report)
    timeline = {cause: [round(t - since) for t in times] for cause, times in windows.items()}
    seen = {
        name: [(round(e["start"] - since), round(e["seconds"]), e["labels"]) for e in episodes]
        for name, episodes in report.items()
    }
    context = f"break, repair, health (s after since): {timeline}; episodes: {seen}"

    # every alert of a cause fires in its window, for each KPI where it speaks per KPI
    for cause, alerts in CAUSES.items():
        start, _, healthy = windows[cause]
        for alert in alerts:
            fired = {
                e["labels"].get("kpi", "")
                for e in report[alert]
                if start <= e["start"] < healthy + SLACK
            }
            wanted = (
                set(KPIS) if alert in {"KpiExporterKpiFailing", "KpiExporterKpiStale"} else {""}
            )
            assert fired == wanted, f"{alert} in {cause}: {fired}; {context}"

    # no episode outside its own cause's window, unless an alert of the cause firing at the
    # same time inhibits it in the example Alertmanager
    inhibit = yaml.safe_load((ROOT / "rules" / "alertmanager.example.yml").read_text())
    rule_labels = _rule_labels(spec, tmp_path / "rules")

    def labelled(alert: str, episode: dict) -> dict[str, str]:
        return {**episode["labels"], **rule_labels[alert], "alertname": alert}

    unexplained = []
    for alert, episodes in report.items():
        for episode in episodes:
            causes = [c for c, alerts in CAUSES.items() if alert in alerts]
            if any(
                windows[c][0] <= episode["start"] and episode["end"] <= windows[c][2] + SLACK
                for c in causes
            ):
                continue
            explained = any(
                source["start"] <= episode["start"]
                and episode["end"] <= source["end"]
                and _inhibited(
                    labelled(alert, episode),
                    labelled(other, source),
                    inhibit["inhibit_rules"],
                )
                for cause, alerts in CAUSES.items()
                for other in alerts
                for source in report[other]
            )
            if not explained:
                unexplained.append((alert, round(episode["start"] - since), episode["labels"]))
    assert not unexplained, f"{unexplained}; {context}"
    assert report["KpiExporterAbsent"] == [], context
