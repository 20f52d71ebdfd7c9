"""rules/alertmanager.example.yml: amtool's routes, and its inhibitions in a real Alertmanager.

One cause, one notification: a database failover pages once (not once per KPI), an exporter
down silences its KPIs. The receivers of a copy of the example are pointed at a webhook in this
test and its timers shortened; the routing tree and the inhibitions are the example's own."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import ROOT, free_port, tool

EXAMPLE = ROOT / "rules" / "alertmanager.example.yml"
JOB = {"job": "kpi-exporter", "instance": "exporter:9091", "service": "demo"}


def _routes(amtool: str, *labels: str) -> str:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={EXAMPLE}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_example_is_valid_and_routes_by_severity() -> None:
    amtool = tool("amtool")
    check = subprocess.run(
        [amtool, "check-config", str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    routes = {"critical": "pager,chat-and-email", "warning": "chat", "info": "blackhole"}
    for severity, receivers in routes.items():
        assert _routes(amtool, f"severity={severity}") == receivers, severity
    # the generated health alerts route as their severity says
    assert (
        _routes(amtool, "alertname=KpiExporterDatabaseDown", "severity=critical", "database=app")
        == "pager,chat-and-email"
    )
    assert _routes(amtool, "alertname=KpiExporterKpiFailing", "severity=warning") == "chat"


class _Webhook(BaseHTTPRequestHandler):
    received: list[tuple[str, list[str]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        names = sorted(a["labels"]["alertname"] for a in body["alerts"])
        self.received.append((self.path.strip("/"), names))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, list[str]]]]]:
    """A real Alertmanager on the example's routes and inhibitions; receivers -> a webhook."""
    binary = tool("prometheus-alertmanager")
    _Webhook.received = []
    hook = HTTPServer(("127.0.0.1", free_port()), _Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    config = yaml.safe_load(EXAMPLE.read_text())
    config["global"] = {"resolve_timeout": "5m"}
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [{"url": f"http://127.0.0.1:{hook.server_port}/{receiver['name']}"}],
        }
        for receiver in config["receivers"]
    ]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={path}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: requests.get(f"{url}/-/ready", timeout=2).ok, "alertmanager ready")
        yield url, _Webhook.received
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        hook.shutdown()
        hook.server_close()


def _until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout:g}s")


def _post(url: str, alerts: list[dict[str, str]]) -> None:
    body = [{"labels": labels, "annotations": {"summary": "x."}} for labels in alerts]
    requests.post(f"{url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def _states(url: str, count: int) -> dict[tuple[str, str], str]:
    """(alertname, kpi) -> active|suppressed, once all `count` alerts were processed."""
    alerts = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
    states = {
        (a["labels"]["alertname"], a["labels"].get("kpi", "")): a["status"]["state"] for a in alerts
    }
    done = len(alerts) == count and "unprocessed" not in states.values()
    return states if done else {}


def test_database_failover_pages_once(
    alertmanager: tuple[str, list[tuple[str, list[str]]]],
) -> None:
    url, received = alertmanager
    kpis = ["active_users", "errors_total", "http_requests_total", "payment_failures_total"]
    alerts = [{**JOB, "alertname": "KpiExporterDatabaseDown", "severity": "critical",
               "database": "app"}]  # fmt: skip
    for name in ("KpiExporterKpiFailing", "KpiExporterKpiStale"):
        alerts += [
            {**JOB, "alertname": name, "severity": "warning", "database": "app", "kpi": kpi}
            for kpi in kpis
        ]
    _post(url, alerts)
    states = _until(lambda: _states(url, len(alerts)), "alerts processed")
    assert states.pop(("KpiExporterDatabaseDown", "")) == "active"
    assert set(states.values()) == {"suppressed"}
    _until(lambda: {r for r, _ in received} >= {"pager", "chat-and-email"}, "page sent")
    assert received == [
        (receiver, ["KpiExporterDatabaseDown"])
        for receiver in sorted({r for r, _ in received}, key=[r for r, _ in received].index)
    ]
    assert sorted(r for r, _ in received) == ["chat-and-email", "pager"]


def test_exporter_down_silences_its_kpis(
    alertmanager: tuple[str, list[tuple[str, list[str]]]],
) -> None:
    url, received = alertmanager
    alerts = [
        {**JOB, "alertname": "KpiExporterDown", "severity": "critical"},
        {**JOB, "alertname": "HttpRequestsNotIncreasing", "severity": "warning",
         "kpi": "http_requests_total"},
        {**JOB, "alertname": "PaymentFailures", "severity": "critical",
         "kpi": "payment_failures_total"},
        {**JOB, "alertname": "KpiExporterKpiStale", "severity": "warning", "database": "app",
         "kpi": "errors_total"},
        # another job's alert stays active
        {**JOB, "job": "other", "alertname": "PaymentFailures", "severity": "critical",
         "kpi": "payment_failures_total"},
    ]  # fmt: skip
    _post(url, alerts)
    raw = _until(
        lambda: (
            [
                a
                for a in requests.get(f"{url}/api/v2/alerts", timeout=10).json()
                if a["status"]["state"] != "unprocessed"
            ]
            if len(requests.get(f"{url}/api/v2/alerts", timeout=10).json()) == len(alerts)
            else []
        ),
        "alerts processed",
    )
    active = sorted(
        (a["labels"]["job"], a["labels"]["alertname"])
        for a in raw
        if a["status"]["state"] == "active"
    )
    assert active == [("kpi-exporter", "KpiExporterDown"), ("other", "PaymentFailures")]
    _until(lambda: len(received) >= 4, "pages sent")
    names = sorted(name for _, group in received for name in group)
    assert names == ["KpiExporterDown", "KpiExporterDown", "PaymentFailures", "PaymentFailures"]
