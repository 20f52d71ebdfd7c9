"""HTTP: `HttpApp.respond()` answers a request as a pure function of it; `MetricsServer` is the
thin socket layer around it (one event-loop thread for every connection, a bounded pool of
worker threads for the answers). Nothing here touches a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http import HTTPStatus
from logging import DEBUG, ERROR, INFO, WARNING
from typing import Any, NamedTuple, Protocol

from exporter.log import event
from exporter.serving.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from exporter.serving.webconfig import WebSecurity, peer_sans

REQUEST_TIMEOUT = 30.0  # a request (head and body) must arrive within this; idle keep-alive too
HANDSHAKE_TIMEOUT = 10.0
WRITE_TIMEOUT = 30.0  # a client that does not read its answer for this long is dropped
WORKERS = 8  # threads that compute answers; connections never hold one while they wait
MAX_CONNECTIONS = 512  # beyond it the oldest connection not being answered is closed
MAX_BODY = 64 * 1024
MAX_LINE = 65536  # request line and each header line, as Python's http.server
MAX_HEADERS = 100
LINGER = 2.0  # seconds a closing connection still reads what its client sends
TLS_RECORD_HANDSHAKE = 0x16
# What Go's server answers when plain HTTP reaches a TLS port; clients then see why.
PLAIN_TO_TLS = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)
LIFECYCLE_DISABLED = "Lifecycle API is not enabled (start with --web.enable-lifecycle).\n"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
READ_ONLY_PATHS = ("/metrics", "/health", "/ready", "/")


class Endpoints(Protocol):
    """What the HTTP layer asks of the running exporter; cli/serve.py builds it."""

    def metrics_body(self, openmetrics: bool, gzip: bool) -> bytes: ...

    def ready(self) -> tuple[bool, dict[str, Any]]: ...

    def reload(self) -> tuple[bool, list[str]]: ...

    def status_page(self) -> bytes: ...

    def generated_files(self) -> Mapping[str, str]: ...


class Response(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def wants_openmetrics(accept: str) -> bool:
    """True when the Accept header prefers OpenMetrics (as Prometheus' default header does):
    the acceptable type (q above 0, RFC 9110 12.4.2) of highest q, the first listed on a tie."""
    best_q, best = 0.0, False
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
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


def _text(status: int, text: str, *headers: tuple[str, str]) -> Response:
    body = text.encode()
    return Response(status, [("Content-Type", "text/plain; charset=utf-8"), *headers], body)


class HttpApp:
    """Routing, content negotiation, gzip, basic auth and the lifecycle switch, without sockets.

    `lifecycle`: POST /-/reload answers only when true (`--web.enable-lifecycle`), else 403.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        security: WebSecurity | None = None,
        health_no_auth: bool = False,
        lifecycle: bool = False,
    ) -> None:
        self.endpoints = endpoints
        self.security = security
        self.health_no_auth = health_no_auth
        self.lifecycle = lifecycle

    def respond(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        """The answer to one request; `target` as sent, `headers` by any case of their name.

        A HEAD answer keeps the Content-Length of the GET it stands for and has no body.
        """
        response = self._finish(
            self._route(method, target, {k.lower(): v for k, v in headers.items()})
        )
        return response._replace(body=b"") if method == "HEAD" else response

    def error(self, status: int, text: str) -> Response:
        """A plain-text answer the socket layer sends itself (bad framing, body too large)."""
        return self._finish(_text(status, text))

    def _finish(self, response: Response) -> Response:
        """Content-Length first, then the answer's own headers, then the web config's."""
        extra = list(self.security.current().headers) if self.security is not None else []
        length = ("Content-Length", str(len(response.body)))
        return Response(response.status, [length, *response.headers, *extra], response.body)

    def _route(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        if method not in METHODS:
            return _text(501, f"unsupported method {method[:20]!r}\n")
        path = target.split("?", 1)[0]
        refused = self._unauthorized(path, headers.get("authorization"))
        if refused is not None:
            return refused
        if method in ("GET", "HEAD"):
            return self._get(path, headers)
        if method == "POST":
            return self._post(path)
        return _text(405, "method not allowed\n", ("Allow", "GET, HEAD, POST"))

    def _unauthorized(self, path: str, authorization: str | None) -> Response | None:
        """None when the request may go on; else the 401 (basic auth per the web config)."""
        if self.security is None:
            return None
        config = self.security.current()
        if not config.users or (self.health_no_auth and path == "/health"):
            return None
        if self.security.authorized(config, authorization):
            return None
        return _text(401, "Unauthorized\n", ("WWW-Authenticate", 'Basic realm="kpi-exporter"'))

    def _get(self, path: str, headers: Mapping[str, str]) -> Response:
        if path == "/metrics":
            openmetrics = wants_openmetrics(headers.get("accept", ""))
            gzip = accepts_gzip(headers.get("accept-encoding", ""))
            content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            out = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
            if gzip:
                out.append(("Content-Encoding", "gzip"))
            return Response(200, out, self.endpoints.metrics_body(openmetrics, gzip))
        if path == "/health":
            return _text(200, "ok\n")
        if path == "/ready":
            ready, info = self.endpoints.ready()
            body = json.dumps(info, indent=1, sort_keys=True).encode()
            return Response(200 if ready else 503, [("Content-Type", "application/json")], body)
        if path == "/":
            page = self.endpoints.status_page()
            return Response(200, [("Content-Type", "text/html; charset=utf-8")], page)
        if path == "/-/reload":
            return _text(405, "use POST\n", ("Allow", "POST"))
        if path.startswith("/generated/"):
            text = self.endpoints.generated_files().get(path.removeprefix("/generated/"))
            if text is None:
                return _text(404, "not found\n")
            kind = "application/json" if path.endswith(".json") else "application/yaml"
            return Response(200, [("Content-Type", f"{kind}; charset=utf-8")], text.encode())
        return _text(404, "not found\n")

    def _post(self, path: str) -> Response:
        if path == "/-/reload":
            if not self.lifecycle:
                return _text(403, LIFECYCLE_DISABLED)
            ok, errors = self.endpoints.reload()
            if ok:
                return _text(200, "reloaded\n")
            return _text(400, "reload refused:\n" + "\n".join(errors) + "\n")
        if path in READ_ONLY_PATHS:
            return _text(405, "method not allowed\n", ("Allow", "GET, HEAD"))
        return _text(404, "not found\n")


class BadRequest(Exception):
    """A request the server answers itself and then closes the connection."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Request(NamedTuple):
    method: str
    target: str
    version: tuple[int, int]
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value


async def _line(reader: asyncio.StreamReader, too_long: BadRequest) -> bytes:
    """One line with its end; at end of stream what came (maybe b""); too long: `too_long`."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    except asyncio.LimitOverrunError:
        raise too_long from None


async def read_head(reader: asyncio.StreamReader) -> Request | None:
    """The request line and headers; None when the client closed before sending any."""
    line = await _line(reader, BadRequest(414, "request line too long\n"))
    if not line:
        return None
    words = line.decode("iso-8859-1").rstrip("\r\n").split()
    if len(words) != 3:
        raise BadRequest(400, f"bad request line {line[:100]!r}\n")
    method, target, version_text = words
    try:
        name, _, number = version_text.partition("/")
        major, minor = (int(n) for n in number.split(".", 1))
        if name != "HTTP" or major < 0 or minor < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(400, f"bad HTTP version {version_text[:20]!r}\n") from None
    if major >= 2:
        raise BadRequest(505, "HTTP version not supported\n")
    headers: dict[str, str] = {}
    last = ""
    for _ in range(MAX_HEADERS + 1):
        raw = await _line(reader, BadRequest(431, "header line too long\n"))
        text = raw.decode("iso-8859-1").rstrip("\r\n")
        if not text:
            return Request(method, target, (major, minor), headers)
        if text[0] in " \t" and last:  # obsolete line folding
            headers[last] += " " + text.strip()
            continue
        name, colon, value = text.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "bad header line\n")
        last = name.lower()
        headers[last] = value.strip()
    raise BadRequest(431, f"more than {MAX_HEADERS} headers\n")


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version >= (1, 1):
        return "close" not in connection
    return "keep-alive" in connection


def _head_bytes(response: Response, close: bool) -> bytes:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    lines = [f"HTTP/1.1 {response.status} {phrase}", "Server: kpi-exporter"]
    lines.append(f"Date: {formatdate(time.time(), usegmt=True)}")
    lines += [f"{name}: {value}" for name, value in response.headers]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


class MetricsServer:
    """HTTP(S) on one socket: an event loop in one thread reads requests and writes answers;
    `workers` threads compute the answers. A connection that is slow to send its request or to
    read its answer costs a socket and a coroutine, never a thread; `request_timeout` bounds
    how long it may take, and past `max_connections` the oldest connection not being answered
    is closed to admit the new one. TLS handshakes run in the loop, bounded by
    `handshake_timeout`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        app: HttpApp,
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        write_timeout: float = WRITE_TIMEOUT,
        workers: int = WORKERS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.app = app
        self.security = app.security
        self.request_timeout = request_timeout
        self.handshake_timeout = handshake_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self.workers = workers
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        self._socket.setblocking(False)
        self.port = int(self._socket.getsockname()[1])
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http-worker")
        self._loop = asyncio.new_event_loop()
        self._connections: dict[asyncio.Task[None], asyncio.WriteTransport | None] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._stopping = asyncio.Event()  # bound to the loop on first use, in the loop

    @property
    def tls(self) -> bool:
        return self.security is not None and self.security.config.tls is not None

    def start(self) -> None:
        # every worker thread now, not on demand: the thread count is the same all along
        started = threading.Barrier(self.workers)
        for _ in range(self.workers):
            self._pool.submit(started.wait, 30.0)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """The serving thread runs (the watchdog asks)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=10.0)
        self._socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve(self._stopping))
        finally:
            self._loop.close()

    async def _serve(self, stopping: asyncio.Event) -> None:
        accepting = asyncio.ensure_future(self._accept_forever())
        await stopping.wait()
        accepting.cancel()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(accepting, *self._connections, return_exceptions=True)

    async def _accept_forever(self) -> None:
        while True:
            try:
                conn, address = await self._loop.sock_accept(self._socket)
            except OSError as exc:  # out of file descriptors: let some connections end first
                event(WARNING, "http_accept_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            if len(self._connections) >= self.max_connections:
                self._evict()
            task = asyncio.ensure_future(self._connection(conn, address[0]))
            self._connections[task] = None
            task.add_done_callback(lambda done: self._connections.pop(done, None))
            await asyncio.sleep(0)  # accept() may not yield: let the connections run

    def _evict(self) -> None:
        """Close the oldest connection not being answered (all are: the newcomer gets in)."""
        for task, transport in self._connections.items():
            if task not in self._answering:
                del self._connections[task]  # counted out now, before it has wound down
                if transport is not None:
                    transport.abort()
                task.cancel()
                event(DEBUG, "http_connection_evicted", limit=self.max_connections)
                return
        # every connection is being answered now: the newcomer is admitted over the limit

    async def _connection(self, conn: socket.socket, client: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        transport: asyncio.WriteTransport | None = None
        try:
            reader, writer = await self._open(conn, client)
            if writer is None:
                return
            transport = writer.transport
            self._connections[task] = transport
            await self._requests(reader, writer, task, client)
            await self._close(reader, writer)
        except (TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
            # a client that stalls, goes away or breaks TLS mid-request is normal traffic
            event(DEBUG, "http_connection_error", client=client)
        finally:
            if transport is None:
                conn.close()
            elif not transport.is_closing():
                transport.abort()

    async def _close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send what is buffered, then end the stream; what the client still sends is read
        and dropped for a moment, as closing over unread bytes would reset the answer."""
        async with asyncio.timeout(self.write_timeout):
            if writer.can_write_eof():  # TLS cannot half-close: close() flushes it instead
                writer.write_eof()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LINGER):
                        while await reader.read(65536):
                            pass
            writer.close()
            await writer.wait_closed()

    async def _open(
        self, conn: socket.socket, client: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter | None]:
        """Streams over the connection; TLS when configured (None writer: refused, logged)."""
        reader = asyncio.StreamReader(limit=MAX_LINE, loop=self._loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=self._loop)
        context, sans = None, frozenset[str]()
        if self.security is not None:
            config = self.security.current()
            context, sans = config.tls, frozenset(config.allowed_sans)
        if context is not None and not await self._speaks_tls(conn, client):
            return reader, None
        try:
            transport, _ = await self._loop.connect_accepted_socket(
                lambda: protocol,
                conn,
                ssl=context,
                ssl_handshake_timeout=self.handshake_timeout if context is not None else None,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            error = str(exc) or type(exc).__name__
            event(INFO, "tls_handshake_failed", client=client, error=error)
            return reader, None
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        if sans and not peer_sans(transport.get_extra_info("peercert")) & sans:
            event(INFO, "tls_client_refused", client=client, error="no allowed SAN")
            transport.abort()
            return reader, None
        return reader, writer

    async def _speaks_tls(self, conn: socket.socket, client: str) -> bool:
        """Peek at the first byte: a TLS handshake record, or plain HTTP (told so) or nothing."""
        readable: asyncio.Future[None] = self._loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        self._loop.add_reader(conn.fileno(), ready)
        try:
            await asyncio.wait_for(readable, self.handshake_timeout)
            first = conn.recv(1, socket.MSG_PEEK)
        except (TimeoutError, OSError) as exc:
            error = str(exc) or type(exc).__name__
            event(INFO, "tls_handshake_failed", client=client, error=error)
            return False
        finally:
            self._loop.remove_reader(conn.fileno())
        if first and first[0] == TLS_RECORD_HANDSHAKE:
            return True
        if first.isalpha():
            with contextlib.suppress(OSError):
                conn.send(PLAIN_TO_TLS)
                # read what the client sent: closing over unread bytes would reset the answer
                while conn.recv(65536):
                    pass
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        event(INFO, "tls_handshake_failed", client=client, error="not a TLS client")
        return False

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        task: asyncio.Task[None],
        client: str,
    ) -> None:
        """Answer requests on one connection until it closes, errs or times out."""
        while True:
            try:
                async with asyncio.timeout(self.request_timeout):
                    request = await read_head(reader)
                    if request is None:
                        return
                    body, close = await self._body(reader, writer, request)
            except BadRequest as bad:
                await self._send(writer, self.app.error(bad.status, bad.text), True)
                return
            close = close or not _keep_alive(request)
            self._answering.add(task)
            try:
                response = await self._loop.run_in_executor(self._pool, self._answer, request, body)
            finally:
                self._answering.discard(task)
            self._log(client, request, response)
            await self._send(writer, response, close)
            if close:
                return

    async def _body(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
    ) -> tuple[bytes, bool]:
        """The request body (Content-Length framing only) and whether to close afterwards."""
        if "transfer-encoding" in request.headers:
            return b"", True  # no body is read; its bytes must not pass for the next request
        text = request.headers.get("content-length", "0").strip() or "0"
        if not text.isdigit():
            raise BadRequest(400, "invalid Content-Length\n")
        length = int(text)
        if length > MAX_BODY:
            raise BadRequest(413, "request body too large\n")
        if length and request.headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return (await reader.readexactly(length) if length else b""), False

    async def _send(self, writer: asyncio.StreamWriter, response: Response, close: bool) -> None:
        writer.write(_head_bytes(response, close))
        if response.body:
            writer.write(response.body)
        async with asyncio.timeout(self.write_timeout):
            await writer.drain()

    def _answer(self, request: Request, body: bytes) -> Response:
        """respond(), in a worker thread; a bug there is a logged 500, never a dead thread."""
        try:
            return self.app.respond(request.method, request.target, request.headers, body)
        except Exception as exc:
            event(ERROR, "http_handler_failed", path=request.target[:200], error=repr(exc))
            return self.app.error(500, "internal error\n")

    @staticmethod
    def _log(client: str, request: Request, response: Response) -> None:
        line = f"{request.method} {request.target[:200]} {response.status}"
        if response.status == 401:
            event(INFO, "http_unauthorized", client=client, path=request.target[:200])
        event(DEBUG, "http_request", client=client, line=line)
