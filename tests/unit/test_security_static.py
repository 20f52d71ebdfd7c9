"""Security without a server: no SQL built by string formatting, and basic auth always pays
for one bcrypt check."""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import bcrypt
import pytest
from conftest import ROOT

from exporter.serving import webconfig


def _formatted_sql(node: ast.AST) -> bool:
    """An expression that builds text at run time: f-string, %, +, or .format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    )


# Functions allowed to format SQL, and why: identifiers cannot be bound as parameters.
FORMATTED_SQL_ALLOWED = {
    ("demo.py", "create_schema"): "demo DDL: table and index names from module constants",
}


def test_no_sql_is_built_by_string_formatting() -> None:
    """Every execute() in the package takes literal SQL or the KPI's own query text."""
    found = []
    calls = 0
    for path in sorted((ROOT / "exporter").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            allowed = (path.name, function.name) in FORMATTED_SQL_ALLOWED
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "executemany", "executescript")
                    and node.args
                ):
                    calls += 1
                    if _formatted_sql(node.args[0]) and not allowed:
                        found.append(f"{path.name}:{node.lineno}")
    assert calls > 10  # the scan sees the package's queries
    assert not found, f"SQL built by string formatting at {', '.join(found)}"


def test_basic_auth_always_pays_a_bcrypt_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown users and wrong passwords both cost one bcrypt comparison (constant time in
    the password, and no user-name oracle); only a verified pair is remembered."""
    hashed = bcrypt.hashpw(b"right horse", bcrypt.gensalt(rounds=4))
    config_path = tmp_path / "web.yml"
    config_path.write_text(f"basic_auth_users:\n  alice: '{hashed.decode()}'\n")
    security = webconfig.WebSecurity(config_path)
    config = security.current()
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def recording(password: bytes, digest: bytes) -> bool:
        checked.append(digest)
        return real(password, digest)

    monkeypatch.setattr(webconfig.bcrypt, "checkpw", recording)

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    assert not security.authorized(config, header("mallory", "right horse"))
    assert checked == [webconfig._DUMMY_HASH]
    assert not security.authorized(config, header("alice", "wrong horse"))
    assert checked[-1] == hashed
    assert security.authorized(config, header("alice", "right horse"))
    assert len(checked) == 3
    assert security.authorized(config, header("alice", "right horse"))  # remembered
    assert len(checked) == 3
    assert not security.authorized(config, header("alice", "right horse2"))
    assert len(checked) == 4
    for bad in (
        None,
        "",
        "Bearer x",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert not security.authorized(config, bad)
