"""Web config in Prometheus exporter-toolkit's format: TLS, bcrypt basic auth, response headers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import ssl
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from logging import WARNING
from pathlib import Path
from typing import Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from exporter.log import event

TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuth = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]

_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Go's names (crypto/tls.CipherSuites) -> OpenSSL's. TLS 1.3 suites are not configurable in Go
# either, so those names are accepted and change nothing.
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}

AUTH_CACHE_SIZE = 256  # verified (user, password) pairs kept so bcrypt runs once per client
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10))
CHECK_EVERY = 1.0  # seconds between checks of the files for changes


class WebConfigError(Exception):
    """The web config file cannot be used; the message names the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TlsServerConfig(_Strict):
    cert: str | None = None
    key: SecretStr | None = None
    client_ca: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_auth_type: ClientAuth | None = None
    client_ca_file: Path | None = None
    client_allowed_sans: list[str] = Field(default_factory=list)
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"
    cipher_suites: list[str] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TlsServerConfig:
        if self.cert is not None and self.cert_file is not None:
            raise ValueError("set at most one of 'cert' and 'cert_file'")
        if self.key is not None and self.key_file is not None:
            raise ValueError("set at most one of 'key' and 'key_file'")
        if self.client_ca is not None and self.client_ca_file is not None:
            raise ValueError("set at most one of 'client_ca' and 'client_ca_file'")
        has_cert = self.cert is not None or self.cert_file is not None
        has_key = self.key is not None or self.key_file is not None
        if has_cert != has_key:
            raise ValueError("a certificate needs its key and a key its certificate")
        has_ca = self.client_ca is not None or self.client_ca_file is not None
        auth = self.client_auth
        if auth in ("RequestClientCert", "RequireAnyClientCert"):
            raise ValueError(
                f"client_auth_type {auth} is not supported: Python's TLS verifies every client "
                "certificate it asks for; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )
        if auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and not has_ca:
            raise ValueError(f"client_auth_type {auth} needs client_ca_file (or client_ca)")
        if has_ca and auth == "NoClientCert":
            raise ValueError("a client CA is set but client_auth_type is NoClientCert")
        if self.client_allowed_sans and auth != "RequireAndVerifyClientCert":
            raise ValueError(
                "client_allowed_sans needs client_auth_type RequireAndVerifyClientCert"
            )
        if _VERSIONS[self.min_version] > _VERSIONS[self.max_version]:
            raise ValueError("min_version is above max_version")
        unknown = [c for c in self.cipher_suites if c not in _CIPHERS]
        if unknown:
            raise ValueError(f"unknown cipher suite(s): {', '.join(unknown)}")
        if self.curve_preferences:
            raise ValueError(
                "curve_preferences is not supported (OpenSSL's defaults are used); remove it"
            )
        return self

    @property
    def client_auth(self) -> ClientAuth:
        """The policy in force: a CA without a policy means verify, as exporter-toolkit does."""
        if self.client_auth_type is not None:
            return self.client_auth_type
        if self.client_ca is not None or self.client_ca_file is not None:
            return "RequireAndVerifyClientCert"
        return "NoClientCert"

    @property
    def enabled(self) -> bool:
        return self.cert is not None or self.cert_file is not None


class SecurityHeaders(_Strict):
    content_security_policy: str | None = Field(None, alias="Content-Security-Policy")
    x_frame_options: Literal["deny", "sameorigin", "DENY", "SAMEORIGIN"] | None = Field(
        None, alias="X-Frame-Options"
    )
    x_content_type_options: Literal["nosniff", "NoSniff"] | None = Field(
        None, alias="X-Content-Type-Options"
    )
    x_xss_protection: str | None = Field(None, alias="X-XSS-Protection")
    strict_transport_security: str | None = Field(None, alias="Strict-Transport-Security")


class HttpServerConfig(_Strict):
    http2: bool = True  # accepted for compatibility; this server speaks HTTP/1.1
    headers: SecurityHeaders = Field(default_factory=SecurityHeaders)  # type: ignore[arg-type]


class WebConfigFile(_Strict):
    tls_server_config: TlsServerConfig = Field(default_factory=TlsServerConfig)
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)


@dataclass(frozen=True)
class WebConfig:
    """A loaded web config: the TLS context (None: plain HTTP), users, headers to add."""

    tls: ssl.SSLContext | None
    allowed_sans: frozenset[str]
    users: Mapping[str, bytes]
    headers: tuple[tuple[str, str], ...]
    files: tuple[Path, ...] = field(default=())


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        text = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            text = "unknown key"
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts)


def _load_chain(context: ssl.SSLContext, tls: TlsServerConfig, base: Path) -> list[Path]:
    """Load the server certificate and key; inline PEM goes through a private temporary file."""
    if tls.cert_file is not None and tls.key_file is not None:
        cert, key = _resolve(base, tls.cert_file), _resolve(base, tls.key_file)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"cannot load cert_file {cert} / key_file {key}: {exc}") from None
        return [cert, key]
    pem = (tls.cert or "").strip() + "\n"
    if tls.key is not None:
        pem += tls.key.get_secret_value().strip() + "\n"
    fd, name = tempfile.mkstemp(prefix="kpi-exporter-tls-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        context.load_cert_chain(name)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"cannot load the inline cert/key: {exc}") from None
    finally:
        os.unlink(name)
    return []


def _tls_context(tls: TlsServerConfig, base: Path) -> tuple[ssl.SSLContext, list[Path]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.maximum_version = _VERSIONS[tls.max_version]
    files = _load_chain(context, tls, base)
    auth = tls.client_auth
    if auth != "NoClientCert":
        try:
            if tls.client_ca_file is not None:
                ca = _resolve(base, tls.client_ca_file)
                context.load_verify_locations(cafile=ca)
                files.append(ca)
            else:
                context.load_verify_locations(cadata=tls.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"cannot load the client CA: {exc}") from None
        required = auth == "RequireAndVerifyClientCert"
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    ciphers = [_CIPHERS[c] for c in tls.cipher_suites if _CIPHERS[c]]
    if ciphers:
        try:
            context.set_ciphers(":".join(ciphers))
        except ssl.SSLError as exc:
            raise WebConfigError(f"cipher_suites: {exc}") from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return context, files


def load_web_config(path: Path) -> WebConfig:
    """Read and check a web config file; relative paths in it are relative to the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise WebConfigError(f"cannot read web config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise WebConfigError(f"web config {path} is not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise WebConfigError(f"web config {path} must be a mapping")
    try:
        parsed = WebConfigFile.model_validate(data)
    except ValidationError as exc:
        raise WebConfigError(f"web config {path}: {_message(exc)}") from None
    users: dict[str, bytes] = {}
    for user, secret in parsed.basic_auth_users.items():
        hashed = secret.get_secret_value().encode()
        if not hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            raise WebConfigError(
                f"web config {path}: basic_auth_users.{user}: not a bcrypt hash "
                "(make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
            )
        users[user] = hashed
    headers = tuple(
        (name, value)
        for name, value in parsed.http_server_config.headers.model_dump(by_alias=True).items()
        if value
    )
    tls, files = None, [path]
    if parsed.tls_server_config.enabled:
        tls, cert_files = _tls_context(parsed.tls_server_config, path.parent)
        files.extend(cert_files)
    sans = frozenset(parsed.tls_server_config.client_allowed_sans)
    return WebConfig(tls, sans, users, headers, tuple(files))


def peer_sans(cert: Mapping[str, object] | None) -> set[str]:
    """The subjectAltName values of a verified peer certificate (DNS, IP, e-mail, URI)."""
    values: set[str] = set()
    for entry in (cert or {}).get("subjectAltName", ()):  # type: ignore[attr-defined]
        if isinstance(entry, tuple) and len(entry) == 2:
            values.add(str(entry[1]).strip())
    return values


class WebSecurity:
    """The web config in force: re-read when its files change, checked per connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config = load_web_config(path)
        self._stamps = self._stat()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, None] = OrderedDict()

    def _stat(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for name in self.config.files:
            try:
                st = os.stat(name)
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def current(self) -> WebConfig:
        """The config in force; a changed file is loaded, a broken one is refused and logged."""
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return self.config
        with self._lock:
            if now - self._checked < CHECK_EVERY:
                return self.config
            self._checked = now
            stamps = self._stat()
            if stamps == self._stamps:
                return self.config
            self._stamps = stamps
            try:
                config = load_web_config(self.path)
            except WebConfigError as exc:
                event(WARNING, "web_config_refused", error=str(exc), kept="the previous one")
                return self.config
            if (config.tls is None) != (self.config.tls is None):
                event(WARNING, "web_config_refused", error="TLS cannot be switched on or off live")
                return self.config
            self.config = config
            self._verified.clear()
            self._stamps = self._stat()
            event(WARNING, "web_config_reloaded", path=str(self.path))
            return config

    def authorized(self, config: WebConfig, header: str | None) -> bool:
        """True when basic auth is off or the Authorization header names a user and password."""
        if not config.users:
            return True
        if not header or header[:6].lower() != "basic ":
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        hashed = config.users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), hashed or b"", password.encode()))).digest()
        with self._lock:
            if hashed is not None and key in self._verified:
                self._verified.move_to_end(key)
                return True
        # An unknown user costs a bcrypt check too, so timing does not reveal user names.
        ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH)
        if ok and hashed is not None:
            with self._lock:
                self._verified[key] = None
                while len(self._verified) > AUTH_CACHE_SIZE:
                    self._verified.popitem(last=False)
            return True
        return False
