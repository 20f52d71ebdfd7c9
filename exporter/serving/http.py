"""The HTTP server: /metrics, /health, /ready, /, /-/reload; it never touches a database."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from logging import DEBUG, INFO
from typing import Any, Protocol

from exporter.log import event
from exporter.serving.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from exporter.serving.webconfig import WebConfig, WebSecurity, peer_sans

REQUEST_TIMEOUT = 30.0  # a client that stalls longer loses its connection
HANDSHAKE_TIMEOUT = 10.0
MAX_BODY = 64 * 1024
TLS_RECORD_HANDSHAKE = 0x16
# What Go's server answers when plain HTTP reaches a TLS port; clients then see why.
PLAIN_TO_TLS = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)


class Endpoints(Protocol):
    """What the server asks of the daemon."""

    def metrics_body(self, openmetrics: bool, gzip: bool) -> bytes: ...

    def ready(self) -> tuple[bool, dict[str, Any]]: ...

    def status_page(self) -> bytes: ...

    def reload(self) -> tuple[bool, list[str]]: ...

    def generated_files(self) -> dict[str, str]: ...


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


def _handler(
    app: Endpoints,
    security: WebSecurity | None,
    health_no_auth: bool,
    reload: Callable[[], tuple[bool, list[str]]],
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kpi-exporter"
        sys_version = ""
        protocol_version = "HTTP/1.1"
        timeout = REQUEST_TIMEOUT
        # Headers and body go out in two writes: with Nagle's algorithm a body shorter than
        # one segment waits for the client's delayed ACK of the headers (40 ms on Linux).
        disable_nagle_algorithm = True
        web: WebConfig | None = None

        def log_message(self, format: str, *args: Any) -> None:
            event(DEBUG, "http_request", client=self.client_address[0], line=format % args)

        def end_headers(self) -> None:
            if self.web is not None:
                for name, value in self.web.headers:
                    self.send_header(name, value)
            super().end_headers()

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

        def _allowed(self) -> bool:
            """Basic auth per the web config; answers 401 itself when the request lacks it."""
            if security is None:
                return True
            self.web = security.current()
            if not self.web.users:
                return True
            if health_no_auth and self.path.split("?", 1)[0] == "/health":
                return True
            if security.authorized(self.web, self.headers.get("Authorization")):
                return True
            event(INFO, "http_unauthorized", client=self.client_address[0], path=self.path[:200])
            self._text(401, "Unauthorized\n", WWW_Authenticate='Basic realm="kpi-exporter"')
            return False

        def do_GET(self) -> None:
            if not self._allowed():
                return
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
            elif path.startswith("/generated/"):
                text = app.generated_files().get(path.removeprefix("/generated/"))
                if text is None:
                    self._text(404, "not found\n")
                else:
                    kind = "application/json" if path.endswith(".json") else "application/yaml"
                    self._send(200, text.encode(), f"{kind}; charset=utf-8")
            else:
                self._text(404, "not found\n")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_POST(self) -> None:
            if not self._allowed():
                return
            path = self.path.split("?", 1)[0]
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:  # read(-1) would wait for the client to close
                self.close_connection = True
                self._text(400, "invalid Content-Length\n")
                return
            if length > MAX_BODY:
                self._text(413, "request body too large\n")
                return
            if length:
                self.rfile.read(length)
            if path == "/-/reload":
                ok, errors = reload()
                if ok:
                    self._text(200, "reloaded\n")
                else:
                    self._text(400, "reload refused:\n" + "\n".join(errors) + "\n")
            elif path in ("/metrics", "/health", "/ready", "/"):
                self._text(405, "method not allowed\n", Allow="GET, HEAD")
            else:
                self._text(404, "not found\n")

        def _not_allowed(self) -> None:
            if not self._allowed():
                return
            self._text(405, "method not allowed\n", Allow="GET, HEAD, POST")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    return Handler


class MetricsServer(ThreadingHTTPServer):
    """A threaded HTTP(S) server; each connection has a timeout so stalled clients go away.

    With TLS the handshake runs in the connection's own thread, so a client that never
    finishes it (or speaks plain HTTP) cannot hold up the accept loop.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        app: Endpoints,
        security: WebSecurity | None = None,
        health_no_auth: bool = False,
        reload: Callable[[], tuple[bool, list[str]]] | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.security = security
        handler = _handler(app, security, health_no_auth, reload or app.reload)
        super().__init__((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def tls(self) -> bool:
        return self.security is not None and self.security.config.tls is not None

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if self.security is not None and self.security.config.tls is not None:
            wrapped = self._handshake(request, client_address)
            if wrapped is None:
                self.shutdown_request(request)
                return
            request = wrapped
        super().process_request_thread(request, client_address)

    def _handshake(self, sock: socket.socket, client_address: Any) -> ssl.SSLSocket | None:
        """TLS handshake in the connection's thread; None (logged) when it fails."""
        assert self.security is not None
        config = self.security.current()
        assert config.tls is not None
        client = client_address[0]
        sock.settimeout(HANDSHAKE_TIMEOUT)
        try:
            first = sock.recv(1, socket.MSG_PEEK)
            if first and first[0] != TLS_RECORD_HANDSHAKE:
                if first.isalpha():
                    sock.sendall(PLAIN_TO_TLS)
                event(INFO, "tls_handshake_failed", client=client, error="not a TLS client")
                return None
            wrapped = config.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            wrapped.do_handshake()
        except (OSError, ssl.SSLError) as exc:
            event(INFO, "tls_handshake_failed", client=client, error=str(exc) or type(exc).__name__)
            return None
        if config.allowed_sans and not peer_sans(wrapped.getpeercert()) & config.allowed_sans:
            event(INFO, "tls_client_refused", client=client, error="no allowed SAN")
            wrapped.close()
            return None
        return wrapped

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-response is normal; never print a traceback for it.
        event(DEBUG, "http_connection_error", client=client_address[0])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """The serving thread runs (the watchdog asks)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
