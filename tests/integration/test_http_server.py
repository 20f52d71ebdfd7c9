"""MetricsServer in-process on a loopback port: bounded threads under a flood of idle
connections, keep-alive, request framing, and the timeouts given as arguments."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from exporter.serving.http import HttpApp, MetricsServer

BODY = b"kpi_value 1.0\n" * 1000


class Exporter:
    def __init__(self) -> None:
        self.reloads = 0

    def metrics_body(self, openmetrics: bool, gzip: bool) -> bytes:
        return BODY

    def ready(self) -> tuple[bool, dict[str, Any]]:
        return True, {"ready": True}

    def reload(self) -> tuple[bool, list[str]]:
        self.reloads += 1
        return True, []

    def status_page(self) -> bytes:
        return b"<html></html>"

    def generated_files(self) -> dict[str, str]:
        return {}


@contextlib.contextmanager
def serving(**limits: Any) -> Iterator[MetricsServer]:
    server = MetricsServer("127.0.0.1", 0, HttpApp(Exporter(), lifecycle=True), **limits)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert not server.alive()


def scrape(server: MetricsServer) -> None:
    url = f"http://127.0.0.1:{server.port}/metrics"
    response = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert (response.status_code, response.content) == (200, BODY)


def connect(server: MetricsServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response's head and body (Content-Length framing) from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return head, rest


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed the connection (reads until end of stream, 10 s at most)."""
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except OSError:
        return False
    return True


def test_a_flood_of_idle_connections_over_the_limit_cannot_stop_a_scrape() -> None:
    """64 connections that never finish a request, 16 allowed, 2 worker threads: the oldest
    idle ones are closed to admit newcomers, every scrape answers, threads stay bounded."""
    threads_before = threading.active_count()
    with serving(workers=2, max_connections=16, request_timeout=600) as server:
        flood = []
        try:
            for n in range(64):
                sock = connect(server)
                sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow-%d: " % n)
                flood.append(sock)
            for _ in range(5):
                scrape(server)
            assert threading.active_count() <= threads_before + 1 + 2  # loop + workers
            evicted = sum(closed_by_server(sock) for sock in flood[:40])
            assert evicted == 40
        finally:
            for sock in flood:
                sock.close()


def test_the_request_timeout_closes_a_silent_connection() -> None:
    with serving(request_timeout=0.5) as server, connect(server) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # the head never ends
        assert closed_by_server(sock)
        scrape(server)


def split_answers(stream: bytes, head_only: set[int]) -> list[tuple[bytes, bytes]]:
    """Pipelined responses from one byte stream by Content-Length (no body for HEAD answers)."""
    answers: list[tuple[bytes, bytes]] = []
    while stream:
        head, _, stream = stream.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        if len(answers) in head_only:
            length = 0
        answers.append((head, stream[:length]))
        stream = stream[length:]
    return answers


def test_keep_alive_pipelining_and_close() -> None:
    with serving() as server, connect(server) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /-/reload HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
            b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        # the answers may arrive in any number of segments: read until the server closes
        sock.settimeout(10)
        stream = b""
        for _ in range(10_000):
            chunk = sock.recv(65536)
            if not chunk:
                break
            stream += chunk
        answers = split_answers(stream, head_only={1})
        assert len(answers) == 4, stream
        (head, body), (head_only, empty), (reload_head, reloaded), (last, metrics) = answers
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"ok\n"
        # HEAD: a head with the GET's length and no body
        assert head_only.startswith(b"HTTP/1.1 200 OK\r\n") and empty == b""
        assert f"Content-Length: {len(BODY)}\r\n".encode() in head_only + b"\r\n"
        assert b" 200 " in reload_head.split(b"\r\n")[0] and reloaded == b"reloaded\n"
        assert b"Connection: close" in last and metrics == BODY


def test_http_1_0_closes_after_its_answer() -> None:
    with serving() as server, connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        _, body = read_answer(sock)
        assert body == b"ok\n"
        assert closed_by_server(sock)


def test_expect_continue_gets_its_interim_answer() -> None:
    with serving() as server, connect(server) as sock:
        sock.sendall(
            b"POST /-/reload HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        )
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        assert read_answer(sock)[1] == b"reloaded\n"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET / HTTP/x\r\n\r\n", 400),
        (b"POST /-/reload HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413),
        (b"POST /-/reload HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400),
    ],
)
def test_bad_framing_is_answered_and_closed(request_bytes: bytes, status: int) -> None:
    with serving() as server, connect(server) as sock:
        sock.sendall(request_bytes)
        head, _ = read_answer(sock)
        assert head.split(b"\r\n")[0].split(b" ")[1] == str(status).encode()
        assert b"Connection: close" in head
        assert closed_by_server(sock)
        scrape(server)
