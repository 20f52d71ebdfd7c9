"""rules/alertmanager.example.yml: amtool's routes, and its inhibitions in a real Alertmanager.

One cause, one notification: a database failover pages once (not once per KPI), an exporter
down silences its KPIs, a burn-rate page silences the threshold warning of its own series. The
receivers of a copy of the example are pointed at a webhook in this test and its timers
shortened; the routing tree and the inhibitions are the example's own."""

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
    # a burn-rate page pages; its ticket and the threshold warning of the same KPI go to chat
    burn = ["alertname=GenerationSuccessErrorBudgetBurn", "kpi=generation_success_ratio"]
    assert _routes(amtool, *burn, "severity=critical", "long=1h") == "pager,chat-and-email"
    assert _routes(amtool, *burn, "severity=warning", "long=3d") == "chat"
    assert (
        _routes(amtool, "alertname=LowGenerationSuccessRate", "severity=warning", "type=text")
        == "chat"
    )


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


def test_a_burn_page_silences_the_warnings_of_its_series(
    alertmanager: tuple[str, list[tuple[str, list[str]]]],
) -> None:
    """The demo's provider outage and slow database: the threshold warning and the burn-rate
    page of one KPI read the same events, so the page silences the warning of its own series
    (type, route) and no other; a KPI's page leaves another KPI's warnings alone."""
    url, received = alertmanager
    gen = {**JOB, "kpi": "generation_success_ratio"}
    lat = {"job": JOB["job"], "instance": JOB["instance"], "kpi": "http_request_duration_seconds"}
    burn = {"severity": "critical", "long": "1h", "short": "5m"}
    alerts = [
        {**gen, "alertname": "GenerationSuccessErrorBudgetBurn", **burn, "type": "text"},
        {**gen, "alertname": "LowGenerationSuccessRate", "severity": "warning", "type": "text"},
        {**gen, "alertname": "LowGenerationSuccessRate", "severity": "warning", "type": "code"},
        # the latency burn carries `service`; HighResponseTime aggregates it away
        {**lat, "service": "demo", "alertname": "HttpRequestDurationLatencyBudgetBurn", **burn,
         "route": "/api/users"},
        {**lat, "alertname": "HighResponseTime", "severity": "warning", "route": "/api/users"},
        {**lat, "alertname": "HighResponseTime", "severity": "warning", "route": "/api/generate"},
        # another KPI's warning of the same job
        {**JOB, "alertname": "HighErrorRate", "severity": "warning", "kpi": "errors_total",
         "component": "api"},
    ]  # fmt: skip
    _post(url, alerts)

    def states() -> dict[tuple[str, str], str]:
        raw = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
        found = {
            (a["labels"]["alertname"], a["labels"].get("type") or a["labels"].get("route", "")): (
                a["status"]["state"]
            )
            for a in raw
        }
        done = len(raw) == len(alerts) and "unprocessed" not in found.values()
        return found if done else {}

    assert _until(states, "alerts processed") == {
        ("GenerationSuccessErrorBudgetBurn", "text"): "active",
        ("LowGenerationSuccessRate", "text"): "suppressed",
        ("LowGenerationSuccessRate", "code"): "active",
        ("HttpRequestDurationLatencyBudgetBurn", "/api/users"): "active",
        ("HighResponseTime", "/api/users"): "suppressed",
        ("HighResponseTime", "/api/generate"): "active",
        ("HighErrorRate", ""): "active",
    }
    expected = {
        ("pager", "GenerationSuccessErrorBudgetBurn"),
        ("pager", "HttpRequestDurationLatencyBudgetBurn"),
        ("chat-and-email", "GenerationSuccessErrorBudgetBurn"),
        ("chat-and-email", "HttpRequestDurationLatencyBudgetBurn"),
        ("chat", "LowGenerationSuccessRate"),
        ("chat", "HighResponseTime"),
        ("chat", "HighErrorRate"),
    }
    sent = lambda: {(r, name) for r, group in received for name in group}  # noqa: E731
    _until(lambda: sent() >= expected, "notifications sent")
    assert sent() == expected
