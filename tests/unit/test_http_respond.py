"""HttpApp.respond() in-process, no sockets: routing, negotiation, gzip, auth, lifecycle."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from exporter.serving.http import HttpApp, Response, accepts_gzip, wants_openmetrics
from exporter.serving.webconfig import WebSecurity

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


class FakeExporter:
    """Endpoints whose answers the tests know; records each call."""

    def __init__(self, ready: bool = True, reload_ok: bool = True) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._ready = ready
        self._reload_ok = reload_ok

    def metrics_body(self, openmetrics: bool, gzip: bool) -> bytes:
        self.calls.append(("metrics", openmetrics, gzip))
        text = b"om 1\n# EOF\n" if openmetrics else b"text 1\n"
        return _gzip(text) if gzip else text

    def ready(self) -> tuple[bool, dict[str, Any]]:
        return self._ready, {"ready": self._ready, "kpis": {}}

    def reload(self) -> tuple[bool, list[str]]:
        self.calls.append(("reload",))
        return (True, []) if self._reload_ok else (False, ["spec.yaml:3: kpis[0].type: bad"])

    def status_page(self) -> bytes:
        return b"<html>status</html>"

    def generated_files(self) -> dict[str, str]:
        return {"rules/alerts.yaml": "groups: []\n", "dashboards/a.json": "{}"}


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def header(response: Response, name: str) -> str | None:
    found = [v for k, v in response.headers if k.lower() == name.lower()]
    assert len(found) <= 1, f"{name} sent {len(found)} times"
    return found[0] if found else None


@pytest.fixture
def exporter() -> FakeExporter:
    return FakeExporter()


@pytest.fixture
def app(exporter: FakeExporter) -> HttpApp:
    return HttpApp(exporter)


# -- negotiation helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text", True),
        ("text/plain", False),
        ("", False),
        ("*/*", False),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", False),
        ("text/plain;q=0.1, application/openmetrics-text;q=0.5", True),
        ("application/json", False),
        # q=0 means not acceptable (RFC 9110 12.4.2), even when nothing else is listed
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text; version=1.0.0; q=0.0", False),
        ("application/openmetrics-text;q=0, text/plain;q=0", False),
        ("application/openmetrics-text;q=0, */*;q=0.1", False),
        ("text/plain;q=0, application/openmetrics-text;q=0.2", True),
        ("application/openmetrics-text;Q=0", False),
        ("application/openmetrics-text;q=zero", False),  # an unreadable q counts as 0
        # the highest q wins wherever it is listed; on a tie the first listed
        ("text/plain;q=0.3, application/openmetrics-text;q=0.7", True),
        ("application/openmetrics-text;q=0.5, text/plain;q=0.5", True),
        ("text/plain;q=0.5, application/openmetrics-text;q=0.5", False),
    ],
)
def test_wants_openmetrics(accept: str, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


@pytest.mark.parametrize(
    ("header_value", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("identity", False),
        ("", False),
        ("br, gzip;q=x", True),
    ],
)
def test_accepts_gzip(header_value: str, expected: bool) -> None:
    assert accepts_gzip(header_value) is expected


# -- routing ---------------------------------------------------------------------------------


def test_metrics_text_by_default(app: HttpApp, exporter: FakeExporter) -> None:
    response = app.respond("GET", "/metrics", {})
    assert response.status == 200
    assert response.body == b"text 1\n"
    assert header(response, "Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    assert header(response, "Content-Length") == "7"
    assert header(response, "Vary") == "Accept, Accept-Encoding"
    assert header(response, "Content-Encoding") is None
    assert exporter.calls == [("metrics", False, False)]


def test_metrics_openmetrics_and_gzip_as_prometheus_asks(
    app: HttpApp, exporter: FakeExporter
) -> None:
    response = app.respond(
        "GET", "/metrics?x=1", {"accept": PROMETHEUS_ACCEPT, "ACCEPT-ENCODING": "gzip"}
    )
    assert response.status == 200
    assert gzip.decompress(response.body) == b"om 1\n# EOF\n"
    assert header(
        response,
        "Content-Type",
    ) == ("application/openmetrics-text; version=1.0.0; charset=utf-8")
    assert header(response, "Content-Encoding") == "gzip"
    assert exporter.calls == [("metrics", True, True)]


def test_head_keeps_the_length_and_drops_the_body(app: HttpApp) -> None:
    get = app.respond("GET", "/metrics", {})
    head = app.respond("HEAD", "/metrics", {})
    assert (head.status, head.body) == (200, b"")
    assert header(head, "Content-Length") == header(get, "Content-Length") == "7"


def test_health_ready_status_page_and_generated(app: HttpApp) -> None:
    assert app.respond("GET", "/health", {})[::2] == (200, b"ok\n")
    ready = app.respond("GET", "/ready", {})
    assert ready.status == 200 and json.loads(ready.body) == {"ready": True, "kpis": {}}
    assert header(ready, "Content-Type") == "application/json"
    page = app.respond("GET", "/", {})
    assert (page.status, page.body) == (200, b"<html>status</html>")
    assert header(page, "Content-Type") == "text/html; charset=utf-8"
    rules = app.respond("GET", "/generated/rules/alerts.yaml", {})
    assert (rules.status, rules.body) == (200, b"groups: []\n")
    assert header(rules, "Content-Type") == "application/yaml; charset=utf-8"
    board = app.respond("GET", "/generated/dashboards/a.json", {})
    assert header(board, "Content-Type") == "application/json; charset=utf-8"


def test_not_ready_is_503() -> None:
    response = HttpApp(FakeExporter(ready=False)).respond("GET", "/ready", {})
    assert response.status == 503
    assert json.loads(response.body)["ready"] is False


@pytest.mark.parametrize(
    "target",
    [
        "/nope",
        "/metrics/",
        "/generated/../../etc/passwd",
        "/generated/rules/missing.yaml",
        "http://evil.example/metrics",
        "/\x00",
        "",
    ],
)
def test_unknown_paths_are_404(app: HttpApp, target: str) -> None:
    response = app.respond("GET", target, {})
    assert (response.status, response.body) == (404, b"not found\n")


@pytest.mark.parametrize(
    ("method", "target", "status", "allow"),
    [
        ("POST", "/metrics", 405, "GET, HEAD"),
        ("POST", "/", 405, "GET, HEAD"),
        ("POST", "/health", 405, "GET, HEAD"),
        ("GET", "/-/reload", 405, "POST"),
        ("HEAD", "/-/reload", 405, "POST"),
        ("PUT", "/-/reload", 405, "GET, HEAD, POST"),
        ("DELETE", "/metrics", 405, "GET, HEAD, POST"),
        ("OPTIONS", "/", 405, "GET, HEAD, POST"),
        ("PATCH", "/metrics", 405, "GET, HEAD, POST"),
        ("BREW", "/metrics", 501, None),
        ("TRACE", "/metrics", 501, None),
        ("POST", "/nope", 404, None),
    ],
)
def test_methods(app: HttpApp, method: str, target: str, status: int, allow: str | None) -> None:
    response = app.respond(method, target, {})
    assert response.status == status
    assert header(response, "Allow") == allow


# -- lifecycle -------------------------------------------------------------------------------


def test_reload_is_refused_without_the_lifecycle_flag(app: HttpApp, exporter: FakeExporter) -> None:
    response = app.respond("POST", "/-/reload", {})
    assert response.status == 403
    assert response.body == b"Lifecycle API is not enabled (start with --web.enable-lifecycle).\n"
    assert ("reload",) not in exporter.calls


def test_reload_with_the_lifecycle_flag(exporter: FakeExporter) -> None:
    app = HttpApp(exporter, lifecycle=True)
    assert app.respond("POST", "/-/reload", {}, b"")[::2] == (200, b"reloaded\n")
    assert exporter.calls == [("reload",)]
    refused = HttpApp(FakeExporter(reload_ok=False), lifecycle=True).respond(
        "POST", "/-/reload", {}
    )
    assert refused.status == 400
    assert refused.body == b"reload refused:\nspec.yaml:3: kpis[0].type: bad\n"


# -- basic auth and headers from the web config ---------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def secured(tmp_path: Path) -> WebSecurity:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        f"basic_auth_users:\n  alice: '{hashed}'\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    )
    return WebSecurity(path)


@pytest.mark.parametrize("target", ["/metrics", "/health", "/", "/ready", "/nope", "/-/reload"])
def test_every_path_needs_basic_auth(secured: WebSecurity, target: str) -> None:
    exporter = FakeExporter()
    app = HttpApp(exporter, secured, lifecycle=True)
    for headers in ({}, _basic("alice", "wrong"), _basic("mallory", "s3cret")):
        for method in ("GET", "POST"):
            response = app.respond(method, target, headers)
            assert response.status == 401
            assert header(response, "WWW-Authenticate") == 'Basic realm="kpi-exporter"'
            assert header(response, "X-Frame-Options") == "deny"
    assert exporter.calls == []


def test_basic_auth_lets_the_user_in_with_the_configured_headers(secured: WebSecurity) -> None:
    exporter = FakeExporter()
    response = HttpApp(exporter, secured).respond("GET", "/metrics", _basic("alice", "s3cret"))
    assert (response.status, response.body) == (200, b"text 1\n")
    assert header(response, "X-Frame-Options") == "deny"
    assert exporter.calls == [("metrics", False, False)]


def test_health_without_auth_when_asked(secured: WebSecurity) -> None:
    app = HttpApp(FakeExporter(), secured, health_no_auth=True)
    assert app.respond("GET", "/health", {}).status == 200
    assert app.respond("GET", "/health?probe=1", {}).status == 200
    assert app.respond("GET", "/metrics", {}).status == 401


def test_error_answers_carry_length_and_configured_headers(secured: WebSecurity) -> None:
    response = HttpApp(FakeExporter(), secured).error(413, "request body too large\n")
    assert response.status == 413
    assert header(response, "Content-Length") == str(len(b"request body too large\n"))
    assert header(response, "X-Frame-Options") == "deny"
