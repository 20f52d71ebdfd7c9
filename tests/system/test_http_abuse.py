"""HTTP abuse against a running exporter: malformed requests, huge headers, unknown methods,
200 slowloris connections and clients that never read; a normal scrape keeps working and the
server's threads stay within its bound (WORKERS answer threads besides the event loop)."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import RunningExporter, wait_until

from exporter.serving.http import WORKERS

SERIES = 20_000  # a body of about 1 MiB, larger than socket buffers


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningExporter]:
    directory = tmp_path_factory.mktemp("abuse")
    database = directory / "abuse.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE t (k TEXT, v REAL)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?)", ((f"key-{n:06d}", n * 0.5) for n in range(SERIES))
        )
    spec = directory / "spec.yaml"
    spec.write_text(
        f"""\
exporter:
  labels: {{service: abuse}}
  state_dir: {directory / "state"}
databases:
  app: {{dsn: "sqlite:///{database}"}}
kpis:
  - name: abuse_values
    help: Many series, so a response does not fit in socket buffers.
    type: gauge
    database: app
    interval: 5s
    max_series: {SERIES}
    labels: [k]
    query: SELECT k, v AS value FROM t
"""
    )
    running = RunningExporter(["-c", str(spec)])
    try:
        running.wait_ready(timeout=60)
        yield running
    finally:
        running.stop()


def scrape_ok(exporter: RunningExporter) -> float:
    """A normal scrape succeeds with every series; returns its latency in seconds."""
    started = time.monotonic()
    response = requests.get(exporter.url + "/metrics", timeout=15)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.text.count("abuse_values{") == SERIES
    return elapsed


def raw(exporter: RunningExporter, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, half-close, and read whatever comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if sum(map(len, chunks)) > 4 * 1024 * 1024:
                    break
    return b"".join(chunks)


def status_of(response: bytes) -> int | None:
    """The status code; an unparseable request gets an HTTP/0.9-style error page only."""
    if response.startswith(b"HTTP/"):
        return int(response.split(b" ", 2)[1])
    if b"<p>Error code: " in response:
        return int(response.split(b"<p>Error code: ", 1)[1][:3])
    return None


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def unsent_connections(port: int) -> int:
    """Server-side sockets of `port` with bytes queued that their client has not read."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                tx_queue = int(fields[4].split(":")[0], 16)
                count += local_port == port and tx_queue > 0
    return count


def wait_threads_back(pid: int, baseline: int) -> None:
    """No thread outlives the clients beyond the server's bound of answer threads."""
    wait_until(
        lambda: threads_of(pid) <= baseline + WORKERS,
        20,
        what=lambda: f"threads to end: {threads_of(pid)} remain; {baseline} before the clients",
    )


MALFORMED: dict[str, tuple[bytes, set[int | None]]] = {
    "garbage": (b"GARBAGE\r\n\r\n", {400}),
    "no_target": (b"GET\r\n\r\n", {400}),
    "bad_version": (b"GET / HTTP/9.9\r\n\r\n", {505}),
    "tls_hello_to_plain_port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(64), {400}),
    "binary_noise": (bytes(range(256)) * 4, {400}),
    "request_line_70k": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", {414}),
    "header_line_70k": (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", {431}),
    "150_headers": (
        b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(150)) + b"\r\n",
        {431},
    ),
    "header_without_colon": (b"GET /health HTTP/1.1\r\nNoColonHere\r\n\r\n", {200, 400}),
    "nul_in_path": (b"GET /\x00 HTTP/1.1\r\n\r\n", {404}),
    "non_ascii_path": (b"GET /\xff\xfe\xfd HTTP/1.1\r\n\r\n", {404}),
    "path_traversal": (b"GET /generated/../../../../etc/passwd HTTP/1.1\r\n\r\n", {404}),
    "absolute_uri": (b"GET http://evil.example/metrics HTTP/1.1\r\n\r\n", {404}),
    "bad_content_length": (b"POST /metrics HTTP/1.1\r\nContent-Length: abc\r\n\r\n", {400}),
    "negative_content_length": (b"POST /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", {400}),
    "huge_content_length": (
        b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        {413},
    ),
    "chunked_post": (
        b"POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        {405},
    ),
    "odd_accept": (
        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;q=abc;;,,*/*;q=nan\r\n"
        b"Accept-Encoding: gzip;q=x, br\r\n\r\n",
        {200},
    ),
    "http_0_9": (b"GET /metrics\r\n", {400, None}),
    "empty": (b"", {None}),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_refused_and_the_server_stays_up(
    exporter: RunningExporter, case: str
) -> None:
    payload, expected = MALFORMED[case]
    response = raw(exporter, payload)
    assert status_of(response) in expected, response[:300]
    assert b"Traceback" not in response
    scrape_ok(exporter)
    assert exporter.proc.poll() is None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("BREW", 501),
        ("TRACE", 501),
        ("CONNECT", 501),
        ("PROPFIND", 501),
        ("PUT", 405),
        ("DELETE", 405),
        ("PATCH", 405),
        ("OPTIONS", 405),
        ("POST", 405),
        ("HEAD", 200),
    ],
)
def test_methods(exporter: RunningExporter, method: str, expected: int) -> None:
    response = requests.request(
        method, exporter.url + "/metrics", timeout=10, headers={"Accept-Encoding": "identity"}
    )
    assert response.status_code == expected
    if method == "HEAD":
        assert response.content == b""
        assert int(response.headers["Content-Length"]) > SERIES * 20


def test_slowloris_of_200_connections(exporter: RunningExporter) -> None:
    """200 clients that trickle their headers: normal scrapes still answer, the server's
    threads stay within its bound, and the request timeout closes the idle connections."""
    pid = exporter.proc.pid
    baseline_threads = threads_of(pid)
    rss_before = rss_mib(pid)
    sockets = []
    for n in range(200):
        sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % n)
        sockets.append(sock)
    try:
        latencies = []
        for round_ in range(10):
            for sock in sockets:  # one more byte each, never a complete request
                sock.sendall(b"a")
            latencies.append(scrape_ok(exporter))
            time.sleep(0.3)
            assert threads_of(pid) <= baseline_threads + WORKERS, f"round {round_}"
        busy_threads = threads_of(pid)
        rss_during = rss_mib(pid)
        # the server drops a client that sends nothing for its request timeout (30 s)
        deadline = time.monotonic() + 60
        closed = 0
        for sock in sockets:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = sock.recv(1024)
            except ConnectionResetError:
                data = b""
            except OSError:  # still open when the deadline came
                continue
            closed += data == b""
        assert closed == len(sockets), f"only {closed} of 200 idle connections were closed"
    finally:
        for sock in sockets:
            sock.close()
    wait_threads_back(pid, baseline_threads)
    scrape_ok(exporter)
    latencies.sort()
    print(
        f"\nslowloris 200: threads {baseline_threads} -> {busy_threads} -> {threads_of(pid)}; "
        f"RSS {rss_before:.0f} -> {rss_during:.0f} MiB; scrape median "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )


def test_clients_that_never_read(exporter: RunningExporter) -> None:
    """50 clients ask for /metrics (1 MiB) and never read it: their answers wait in the
    kernel and the event loop, no thread waits for them; scrapes keep answering."""
    pid = exporter.proc.pid
    baseline_threads = threads_of(pid)
    sockets = []
    for _ in range(50):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", exporter.port))
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(sock)
    try:
        latencies = [scrape_ok(exporter) for _ in range(5)]
        stuck = unsent_connections(exporter.port)
        assert stuck >= 40, f"only {stuck} connections with unread answers: nothing blocked"
        assert threads_of(pid) <= baseline_threads + WORKERS
    finally:
        for sock in sockets:
            sock.close()
    wait_threads_back(pid, baseline_threads)
    scrape_ok(exporter)
    print(f"\n50 non-reading clients: {stuck} answers unread; scrape max {max(latencies):.2f} s")


def test_many_concurrent_scrapes(exporter: RunningExporter) -> None:
    """40 scrapes at once all get the full body."""
    errors: list[BaseException] = []

    def one() -> None:
        try:
            scrape_ok(exporter)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:3]
    assert exporter.proc.poll() is None
