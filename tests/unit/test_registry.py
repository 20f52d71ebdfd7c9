"""The backend registry: DSN schemes to Source classes, optional extras, entry-point plugins."""

from __future__ import annotations

import re
import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from exporter import cli, demo
from exporter.sources import registry
from exporter.sources.base import Guarantees, RunningQueries
from exporter.sources.postgres import PostgresSource
from exporter.sources.sqlite import SqliteSource
from exporter.spec.params import to_paramstyle


@pytest.mark.parametrize(
    ("dsn", "scheme"),
    [
        ("postgresql://u:p@h/db", "postgresql"),
        ("POSTGRES://h/db", "postgres"),
        ("host=h dbname=db", "postgresql"),
        ("sqlite:///x.db", "sqlite"),
        ("sqlalchemy+mssql://h/db", "sqlalchemy+mssql"),
    ],
)
def test_scheme_of(dsn: str, scheme: str) -> None:
    assert registry.scheme_of(dsn) == scheme


def test_builtin_schemes_name_their_classes() -> None:
    assert registry.backend_for("postgresql://h/db") is PostgresSource
    assert registry.backend_for("postgres://h/db") is PostgresSource
    assert registry.backend_for("host=h dbname=db") is PostgresSource
    assert registry.backend_for("sqlite:////tmp/x.db") is SqliteSource


def test_unknown_scheme_is_one_line_listing_the_known() -> None:
    with pytest.raises(registry.BackendError) as caught:
        registry.backend_for("oracle://h/db")
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("unknown DSN scheme 'oracle' (known: ")
    for scheme in ("postgresql://", "postgres://", "sqlite://"):
        assert scheme in message
    with pytest.raises(registry.BackendError, match="has no scheme"):
        registry.backend_for("/var/db.sqlite")


def test_plus_falls_back_to_the_scheme_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.BackendEntry(("fam",), "exporter.sources.sqlite:SqliteSource")
    monkeypatch.setitem(registry._BUILTIN, "fam", entry)
    assert registry.entry_for("fam+variant") is entry


def _module(directory: Path, name: str, text: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(text))


def _without_driver(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Register `fastdb://` as our extra `fast`, whose module imports a driver not installed."""
    _module(directory, "kpi_test_fastdb", "import kpi_test_absent_driver  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(directory))
    entry = registry.BackendEntry(
        ("fastdb",), "kpi_test_fastdb:FastSource", registry.optional_extra("fast")
    )
    monkeypatch.setitem(registry._BUILTIN, "fastdb", entry)


def test_missing_optional_extra_names_the_pip_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend module whose driver is not installed: the error names our extra."""
    _without_driver(tmp_path, monkeypatch)
    with pytest.raises(registry.BackendError) as caught:
        registry.backend_for("fastdb://h/db")
    assert caught.value.message == (
        "the fastdb:// backend needs the kpi_test_absent_driver module: "
        "pip install 'kpi-exporter[fast]'"
    )


def test_a_class_without_its_declarations_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module(tmp_path, "kpi_test_bare", "class Bare:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        registry._BUILTIN, "bare", registry.BackendEntry(("bare",), "kpi_test_bare:Bare")
    )
    with pytest.raises(registry.BackendError, match="declaring guarantees, paramstyle, demo"):
        registry.backend_for("bare://x")


SPEC = """\
databases:
  good: {{dsn: "sqlite:///{db}"}}
  other:
    max_connections: 1
    dsn: "{dsn}"
kpis:
  - {{name: answer, type: gauge, database: {use}, interval: 1m, query: "SELECT 6 * 7 AS value"}}
"""


def _check(tmp_path: Path, dsn: str, use: str = "good") -> tuple[int, str, Path]:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(db=db, dsn=dsn, use=use))
    result = CliRunner().invoke(cli.main, ["check", "-c", str(spec)])
    return result.exit_code, result.output, spec


def test_check_reports_an_unknown_scheme_at_its_line(tmp_path: Path) -> None:
    code, output, spec = _check(tmp_path, "oracle://scott:tiger@h/db")
    assert code == 2
    lines = output.splitlines()
    assert lines[0].startswith(f"{spec}:5: databases.other.dsn: unknown DSN scheme 'oracle'")
    assert lines[1] == "1 problem(s) in the spec"
    assert "tiger" not in output


def test_check_reports_a_missing_extra_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_driver(tmp_path, monkeypatch)
    code, output, spec = _check(tmp_path, "fastdb://h/db")
    assert code == 2
    assert output.splitlines()[0] == (
        f"{spec}:5: databases.other.dsn: the fastdb:// backend needs the "
        "kpi_test_absent_driver module: pip install 'kpi-exporter[fast]'"
    )


def test_check_of_known_schemes_passes(tmp_path: Path) -> None:
    code, output, _ = _check(tmp_path, "postgresql://h/db")
    assert (code, output) == (0, "ok: 1 KPIs, 2 databases\n")


def test_running_queries_cancel_only_the_running() -> None:
    cancelled: list[str] = []
    running: RunningQueries[str] = RunningQueries(cancelled.append)
    with running.track("a"):
        with running.track("b"):
            pass
        assert running.cancel_all() == 1
    assert cancelled == ["a"]
    assert running.cancel_all() == 0


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("named", "SELECT ':x', 5 % 2 WHERE a = :x AND b::text = :y"),
        ("pyformat", "SELECT ':x', 5 %% 2 WHERE a = %(x)s AND b::text = %(y)s"),
        ("dollar", "SELECT ':x', 5 % 2 WHERE a = $x AND b::text = $y"),
    ],
)
def test_paramstyles(style: str, expected: str) -> None:
    query = "SELECT ':x', 5 % 2 WHERE a = :x AND b::text = :y"
    assert to_paramstyle(query, style) == expected  # type: ignore[arg-type]


def test_demo_dialect_comes_from_the_backend() -> None:
    assert demo.demo_dialect("sqlite") == SqliteSource.demo
    assert demo.demo_dialect("postgres") == PostgresSource.demo
    assert PostgresSource.demo is not None and PostgresSource.demo.placeholder == "%s"


def _readme_engines() -> dict[str, Guarantees]:
    """The README's engine table: scheme column -> the four guarantee columns (yes/no)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Database engines", 1)[1].split("\n#", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("`") and cells[1] in ("yes", "no"):
            flags = [c == "yes" for c in cells[1:5]]
            for scheme in re.findall(r"`([a-z+]+)://", cells[0]):
                found[scheme] = Guarantees(*flags)
                found.setdefault(scheme.split("+", 1)[0], Guarantees(*flags))  # a+b serves a
    return found


def test_readme_engine_table_states_each_backends_guarantees() -> None:
    table = _readme_engines()
    for entry in registry.BUILTIN:
        for scheme in entry.schemes:
            assert table.get(scheme) == registry.load(entry).guarantees, scheme
