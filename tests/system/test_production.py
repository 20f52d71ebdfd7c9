"""Production: TLS, basic auth and headers from an exporter-toolkit web config, on a live process.

Also holds the small builders the other test_prod_* files share (certificates, specs).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import bcrypt
import pytest
import requests
from conftest import ROOT, exporter_command, free_port, wait_until
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PASSWORD = "correct horse battery staple"


class Pki(NamedTuple):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_pki(directory: Path) -> Pki:
    """Certificates made now, valid for a day: nothing is checked into the repository."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("kpi-exporter test CA"))
        .issuer_name(_name("kpi-exporter test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return cert, key

    server, server_key = leaf(
        "127.0.0.1",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client, client_key = leaf(
        "scraper", [x509.DNSName("scraper.example")], x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    )
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
        directory / "client.pem",
        directory / "client-key.pem",
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, pki.key)
    pki.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(client_key, pki.client_key)
    return pki


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def make_values_db(path: Path, values: dict[str, float]) -> None:
    """A SQLite table of KPI values the test controls: ground truth for every gauge."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kpi_values (name TEXT PRIMARY KEY, v REAL)")
        conn.executemany(
            "INSERT INTO kpi_values (name, v) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET v = excluded.v",
            sorted(values.items()),
        )


def gauge_spec(db: Path, names: list[str], interval: str = "1s", extra: str = "") -> str:
    """A spec with one gauge per name, each reading its row of `kpi_values`."""
    kpis = "".join(
        f"""
  - name: {name}
    help: Test gauge {name}.
    type: gauge
    database: app
    interval: {interval}
    query: SELECT v AS value FROM kpi_values WHERE name = '{name}'
"""
        for name in names
    )
    return f"""
exporter:
  labels: {{service: prodtest}}
  state_dir: {db.parent / "state"}
databases:
  app:
    dsn: sqlite:///{db}
kpis:{kpis}{extra}
"""


def sample_lines(body: str, prefix: str = "") -> set[str]:
    """The sample lines of an exposition (no comments), optionally only one metric prefix."""
    return {
        line
        for line in body.splitlines()
        if line and not line.startswith("#") and line.startswith(prefix)
    }


@pytest.fixture
def tls_setup(tmp_path: Path) -> tuple[Path, Path, Pki]:
    pki = make_pki(tmp_path / "pki")
    db = tmp_path / "values.db"
    make_values_db(db, {"orders_open": 17.0})
    spec = tmp_path / "spec.yaml"
    spec.write_text(gauge_spec(db, ["orders_open"]))
    return spec, db, pki


def _web_config(path: Path, pki: Pki, users: dict[str, str], extra: str = "") -> Path:
    lines = [
        "tls_server_config:",
        f"  cert_file: {pki.cert}",
        f"  key_file: {pki.key}",
        "  min_version: TLS12",
        "http_server_config:",
        "  headers:",
        "    X-Frame-Options: deny",
        "    X-Content-Type-Options: nosniff",
    ]
    if users:
        lines.append("basic_auth_users:")
        lines.extend(f"  {user}: {hashed}" for user, hashed in users.items())
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _https(exporter, path: str = "/metrics", **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(f"https://127.0.0.1:{exporter.port}{path}", timeout=10, **kwargs)


def _wait_https(exporter, pki: Pki, auth=None, cert=None) -> None:  # type: ignore[no-untyped-def]
    def ready() -> bool:
        if exporter.proc.poll() is not None:
            raise AssertionError(f"exporter exited:\n{exporter.output()}")
        try:
            return _https(exporter, "/ready", verify=str(pki.ca), auth=auth, cert=cert).ok
        except requests.RequestException:
            return False

    wait_until(ready, 30, what="the exporter to be ready over TLS")


def test_tls_and_basic_auth_like_exporter_toolkit(run_exporter, tls_setup, tmp_path) -> None:
    spec, _, pki = tls_setup
    web = _web_config(tmp_path / "web.yml", pki, {"alice": bcrypt_hash(PASSWORD)})
    web.write_text(web.read_text().replace("min_version: TLS12", "min_version: TLS13"))
    exporter = run_exporter(
        ["-c", str(spec), "--web.config.file", str(web), "--web.enable-lifecycle"]
    )
    ca = str(pki.ca)
    _wait_https(exporter, pki, auth=("alice", PASSWORD))

    ok = _https(exporter, verify=ca, auth=("alice", PASSWORD))
    assert ok.status_code == 200
    assert 'orders_open{service="prodtest"} 17.0' in ok.text
    assert ok.headers["X-Frame-Options"] == "deny"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"

    for auth in (None, ("alice", "wrong"), ("mallory", PASSWORD)):
        refused = _https(exporter, verify=ca, auth=auth)
        assert refused.status_code == 401, auth
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
        assert "orders_open" not in refused.text
    # every path is protected, /health included unless the flag says otherwise
    assert _https(exporter, "/health", verify=ca).status_code == 401
    assert _https(exporter, "/", verify=ca).status_code == 401
    post = requests.post(f"https://127.0.0.1:{exporter.port}/-/reload", verify=ca, timeout=10)
    assert post.status_code == 401

    # plain HTTP to the TLS port: told so, connection closed, process unharmed
    plain = requests.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=10)
    assert plain.status_code == 400
    assert "HTTPS server" in plain.text
    # a client that does not trust our CA fails the handshake
    with pytest.raises(requests.exceptions.SSLError):
        _https(exporter, verify=True, auth=("alice", PASSWORD))
    # min_version TLS13 in the web config: a client that stops at TLS 1.2 is refused
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
    with raw, pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname="127.0.0.1")
    # garbage bytes, then a stalled client that never finishes a handshake
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello")
        raw.shutdown(socket.SHUT_WR)
        reply = raw.recv(100)
        # refused: a fatal TLS alert record (content type 21, level 2) or a bare close, no HTTP
        assert reply == b"" or (reply[:1] == b"\x15" and reply[5:6] == b"\x02"), reply
    wait_until(
        lambda: "UNEXPECTED_MESSAGE" in exporter.output(), 10, what="the garbage handshake logged"
    )
    stalled = socket.create_connection(("127.0.0.1", exporter.port), timeout=10)
    try:
        again = _https(exporter, verify=ca, auth=("alice", PASSWORD))
        assert again.status_code == 200, "a stalled handshake must not block other clients"
    finally:
        stalled.close()
    assert exporter.proc.poll() is None
    log = exporter.output()
    assert "tls_handshake_failed" in log
    assert PASSWORD not in log


def test_health_can_be_exempted_from_auth(run_exporter, tls_setup, tmp_path) -> None:
    spec, _, pki = tls_setup
    web = _web_config(tmp_path / "web.yml", pki, {"alice": bcrypt_hash(PASSWORD)})
    exporter = run_exporter(["-c", str(spec), "--web.config.file", str(web), "--health-no-auth"])
    _wait_https(exporter, pki, auth=("alice", PASSWORD))
    ca = str(pki.ca)
    health = _https(exporter, "/health", verify=ca)
    assert health.status_code == 200 and health.text == "ok\n"
    assert _https(exporter, "/metrics", verify=ca).status_code == 401
    assert _https(exporter, "/ready", verify=ca).status_code == 401


def test_client_certificates_and_allowed_sans(run_exporter, tls_setup, tmp_path) -> None:
    spec, _, pki = tls_setup
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
    web = tmp_path / "web.yml"
    _web_config(web, pki, {})
    # the TLS keys must stay under tls_server_config: insert them right after its first lines
    text = web.read_text().replace("  min_version: TLS12\n", "  min_version: TLS12\n" + extra)
    web.write_text(text)
    exporter = run_exporter(["-c", str(spec), "--web.config.file", str(web)])
    client = (str(pki.client_cert), str(pki.client_key))
    _wait_https(exporter, pki, cert=client)
    assert _https(exporter, verify=str(pki.ca), cert=client).status_code == 200
    # the TLS handshake fails: TLS 1.3's "certificate required" alert, or the server's close
    # when it wins the race against the alert (an EOF, a reset, or no response to the request
    # the client sent after its half of the handshake); never an HTTP answer or a timeout
    with pytest.raises(requests.exceptions.ConnectionError) as no_certificate:
        _https(exporter, verify=str(pki.ca))
    assert not isinstance(no_certificate.value, requests.exceptions.Timeout), no_certificate.value
    assert re.search(
        "CERTIFICATE_REQUIRED|EOF occurred in violation of protocol|UNEXPECTED_EOF"
        "|Connection reset by peer|Remote end closed connection without response",
        str(no_certificate.value),
    ), no_certificate.value
    wait_until(
        lambda: "PEER_DID_NOT_RETURN_A_CERTIFICATE" in exporter.output(),
        10,
        what="the refused handshake in the log",
    )
    assert exporter.proc.poll() is None

    web2 = tmp_path / "web2.yml"
    web2.write_text(text.replace(extra, extra + "  client_allowed_sans: [other.example]\n"))
    picky = run_exporter(["-c", str(spec), "--web.config.file", str(web2)])
    wait_until(lambda: "listening" in picky.output(), 30, what="the exporter to listen")
    # the handshake succeeds (the certificate is valid); the SAN check closes the connection
    with pytest.raises(requests.exceptions.ConnectionError, match="closed connection") as refused:
        _https(picky, verify=str(pki.ca), cert=client)
    assert not isinstance(refused.value, requests.exceptions.SSLError), refused.value
    assert "no allowed SAN" in picky.output()


def test_web_config_changes_apply_without_restart(run_exporter, tls_setup, tmp_path) -> None:
    spec, _, pki = tls_setup
    web = _web_config(tmp_path / "web.yml", pki, {"alice": bcrypt_hash(PASSWORD)})
    exporter = run_exporter(["-c", str(spec), "--web.config.file", str(web)])
    _wait_https(exporter, pki, auth=("alice", PASSWORD))
    _web_config(web, pki, {"bob": bcrypt_hash("new password")})

    def switched() -> bool:
        bob = _https(exporter, verify=str(pki.ca), auth=("bob", "new password"))
        return bob.status_code == 200

    wait_until(switched, 20, what="the new user to be accepted")
    assert _https(exporter, verify=str(pki.ca), auth=("alice", PASSWORD)).status_code == 401
    # a broken edit is refused and the last good config stays in force
    web.write_text(web.read_text() + "rate_limit: {burst: 2}\n")
    time.sleep(1.5)  # the file is checked at most once a second
    assert _https(exporter, verify=str(pki.ca), auth=("bob", "new password")).status_code == 200
    wait_until(lambda: "web_config_refused" in exporter.output(), 10, what="the refusal logged")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tls_server_config:\n  cert_file: /nonexistent.pem\n", "certificate needs its key"),
        ("basic_auth_users:\n  alice: plaintext\n", "not a bcrypt hash"),
        ("tls_server_config:\n  client_auth_type: Sometimes\n", "client_auth_type"),
        ("rate_limit: {interval: 1s, burst: 2}\n", "rate_limit: unknown key"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "X-Frame-Options"),
        (
            "tls_server_config:\n  cert_file: a.pem\n  key_file: a.key\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "needs client_ca_file",
        ),
    ],
)
def test_bad_web_config_refused_at_start(tmp_path: Path, content: str, message: str) -> None:
    db = tmp_path / "values.db"
    make_values_db(db, {"orders_open": 1.0})
    spec = tmp_path / "spec.yaml"
    spec.write_text(gauge_spec(db, ["orders_open"]))
    web = tmp_path / "web.yml"
    web.write_text(content)
    port = free_port()
    result = subprocess.run(
        [
            *exporter_command(),
            *("run", "-c", str(spec), "--listen", f"127.0.0.1:{port}"),
            *("--web.config.file", str(web)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "plaintext" not in result.stderr
