"""The HTTP server: /metrics, /health, /ready, /, /-/reload; it never touches a database."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from logging import DEBUG
from typing import Any, Protocol

from exporter.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from exporter.log import event

REQUEST_TIMEOUT = 30.0  # a client that stalls longer loses its connection
MAX_BODY = 64 * 1024


class Endpoints(Protocol):
    """What the server asks of the daemon."""

    def metrics_body(self, openmetrics: bool, gzip: bool) -> bytes: ...

    def ready(self) -> tuple[bool, dict[str, Any]]: ...

    def status_page(self) -> bytes: ...

    def reload(self) -> tuple[bool, list[str]]: ...


def wants_openmetrics(accept: str) -> bool:
    """True when the Accept header prefers OpenMetrics (as Prometheus' default header does)."""
    best_q, best = -1.0, False
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media == "application/openmetrics-text" and q > best_q:
            best_q, best = q, True
        elif media in ("text/plain", "*/*", "text/*") and q > best_q:
            best_q, best = q, False
    return best


def accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() == "gzip":
            return not any(f.replace(" ", "") in ("q=0", "q=0.0") for f in fields[1:])
    return False


def _handler(app: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kpi-exporter"
        sys_version = ""
        protocol_version = "HTTP/1.1"
        timeout = REQUEST_TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:
            event(DEBUG, "http_request", client=self.client_address[0], line=format % args)

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _text(self, status: int, text: str, **headers: str) -> None:
            self._send(status, text.encode(), "text/plain; charset=utf-8", **headers)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                openmetrics = wants_openmetrics(self.headers.get("Accept", ""))
                gzip = accepts_gzip(self.headers.get("Accept-Encoding", ""))
                body = app.metrics_body(openmetrics, gzip)
                content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
                extra = {"Vary": "Accept, Accept-Encoding"}
                if gzip:
                    extra["Content-Encoding"] = "gzip"
                self._send(200, body, content_type, **extra)
            elif path == "/health":
                self._text(200, "ok\n")
            elif path == "/ready":
                ready, info = app.ready()
                body = json.dumps(info, indent=1, sort_keys=True).encode()
                self._send(200 if ready else 503, body, "application/json")
            elif path == "/":
                self._send(200, app.status_page(), "text/html; charset=utf-8")
            elif path == "/-/reload":
                self._text(405, "use POST\n", Allow="POST")
            else:
                self._text(404, "not found\n")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._text(413, "request body too large\n")
                return
            if length:
                self.rfile.read(length)
            if path == "/-/reload":
                ok, errors = app.reload()
                if ok:
                    self._text(200, "reloaded\n")
                else:
                    self._text(400, "reload refused:\n" + "\n".join(errors) + "\n")
            elif path in ("/metrics", "/health", "/ready", "/"):
                self._text(405, "method not allowed\n", Allow="GET, HEAD")
            else:
                self._text(404, "not found\n")

        def _not_allowed(self) -> None:
            self._text(405, "method not allowed\n", Allow="GET, HEAD, POST")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    return Handler


class MetricsServer(ThreadingHTTPServer):
    """A threaded HTTP server; each connection has a timeout so stalled clients go away."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, app: Endpoints) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _handler(app))
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
