"""bcrypt hashes as htpasswd writes them ($2y$) verify in a web config."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt

PASSWORD = "correct horse battery staple"


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()


def test_bcrypt_2y_hashes_from_htpasswd_verify(tmp_path: Path) -> None:
    """htpasswd writes $2y$ hashes; exporter-toolkit accepts them, so must we."""
    from exporter.serving.webconfig import WebSecurity

    hashed = bcrypt_hash(PASSWORD)
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: '$2y${hashed[4:]}'\n")
    security = WebSecurity(web)
    config = security.current()
    assert config.tls is None
    good = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    bad = "Basic " + base64.b64encode(b"alice:nope").decode()
    assert security.authorized(config, good)
    assert security.authorized(config, good)  # second time from the cache
    assert not security.authorized(config, bad)
    assert not security.authorized(config, "Basic !!!")
    assert not security.authorized(config, None)
