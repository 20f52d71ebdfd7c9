"""Shared fixtures: test tiers, PostgreSQL schemas, MariaDB databases, tools, ports, exporters.

Tiers come from the folder a test lives in (tests/unit, tests/integration, tests/system); the
hook below marks each test with its folder's name, so `pytest -m unit` selects a tier."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import yaml
from support.dashboards import demo_spec, kitchen_sink

from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.rendering import render_board

ROOT = Path(__file__).resolve().parent.parent
# CI services set CI=true (GitHub, GitLab) or CI=1; any of these means "required here"
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
TIERS = ("unit", "integration", "system")
T = TypeVar("T")
POSTGRES_DSN = os.environ.get("KPI_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_DSN = os.environ.get("KPI_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier, the name of the folder under tests/ that holds it."""
    tests = Path(__file__).resolve().parent
    for item in items:
        tier = item.path.resolve().relative_to(tests).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/{{{','.join(TIERS)}}}/")
        item.add_marker(tier)


def need(condition: bool, reason: str) -> None:
    """Skip when a dependency is missing, but fail under CI=true where it must be there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def extra(module: str, install: str) -> Any:
    """The module of an optional extra (duckdb, mariadb), imported at a test module's top; a
    missing one skips the module, and fails under CI like every other required dependency."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed ({install})"
        if IN_CI:
            pytest.fail(f"{reason} (required under CI)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def tool(name: str) -> str:
    """Path of an external tool (promtool, amtool, prometheus), or skip/fail."""
    path = shutil.which(name)
    need(path is not None, f"{name} is not installed (Debian package prometheus/alertmanager)")
    assert path is not None
    return path


def _postgres_ok() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means: no usable server
        return f"PostgreSQL not reachable at {POSTGRES_DSN}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    problem = _postgres_ok()
    need(problem is None, problem or "")
    return POSTGRES_DSN


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[tuple[str, str]]:
    """A fresh schema for one test; yields (dsn with search_path set, schema name)."""
    with fresh_pg_schema(postgres_dsn) as found:
        yield found


@contextlib.contextmanager
def fresh_pg_schema(postgres_dsn: str) -> Iterator[tuple[str, str]]:
    """A schema of its own, dropped on exit (for fixtures wider than one test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_dsn else "?"
    dsn = f"{postgres_dsn}{sep}options=-csearch_path%3D{schema}"
    try:
        yield dsn, schema
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _mysql_problem() -> str | None:
    try:
        import mariadb  # noqa: F401
    except ImportError:
        return (
            "the MariaDB driver is not installed (pip install -e '.[mysql]', needs libmariadb-dev)"
        )
    try:
        mysql_connect(MYSQL_DSN).close()
        return None
    except Exception as exc:  # any failure means: no usable server
        return f"MariaDB not reachable at {MYSQL_DSN}: {type(exc).__name__}"


def mysql_connect(dsn: str, database: str | None = None) -> Any:
    """A plain driver connection (autocommit) to a mysql:// DSN, optionally another database."""
    import mariadb

    from exporter.sources.mysql import connect_arguments

    arguments = connect_arguments(dsn)
    if database is not None:
        arguments["database"] = database
    return mariadb.connect(**arguments, connect_timeout=3, autocommit=True)


@pytest.fixture(scope="session")
def mysql_dsn() -> str:
    problem = _mysql_problem()
    need(problem is None, problem or "")
    return MYSQL_DSN


@pytest.fixture
def mysql_database(mysql_dsn: str) -> Iterator[tuple[str, str]]:
    """A fresh MariaDB database for one test; yields (its DSN, its name)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with contextlib.closing(mysql_connect(mysql_dsn)) as conn:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    base, _, query = mysql_dsn.partition("?")
    dsn = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    try:
        yield dsn, name
    finally:
        with contextlib.closing(mysql_connect(mysql_dsn)) as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.2,
    *,
    what: str | Callable[[], str] = "the condition",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` until it returns a true value, and return that value.

    Bounded in time and in calls: fails after `timeout` seconds with `what` (a text, or a
    function building one from the state at that moment) and the last value seen. Exceptions
    listed in `retry_on` count as "not yet" (a server still starting); any other propagates."""
    deadline = time.monotonic() + timeout
    last: Any = None
    for _ in range(int(timeout / interval) + 2):
        try:
            last = predicate()
        except retry_on as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    message = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scraping(port: int) -> dict[str, Any]:
    """A Prometheus config scraping the exporter on `port` every second as job kpi-exporter."""
    return {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "kpi-exporter", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        ],
    }


def tsdb_from_openmetrics(text: str, directory: Path) -> Path:
    """`directory`/tsdb holding blocks that promtool made from OpenMetrics `text`, for a
    Prometheus started on `directory`."""
    source = directory / "history.om"
    directory.mkdir(parents=True, exist_ok=True)
    source.write_text(text)
    (directory / "tsdb").mkdir()
    subprocess.run(
        [tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source),
         str(directory / "tsdb")],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return directory


def exporter_command() -> list[str]:
    return [sys.executable, "-m", "exporter.cli"]


class RunningExporter:
    """A `kpi-exporter run` subprocess on a free loopback port, stopped by its own PID."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"kpi-exporter-{self.port}.log"
        full_env = {**os.environ, **(env or {})}
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [*exporter_command(), "run", "--listen", f"127.0.0.1:{self.port}", *args],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd or ROOT,
        )

    def wait_ready(self, timeout: float = 30.0, path: str = "/ready") -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited {self.proc.returncode}:\n{self.output()}")
            return requests.get(self.url + path, timeout=1).status_code == 200

        wait_until(
            ready,
            timeout,
            0.1,
            what=lambda: f"{path} to answer 200; exporter log:\n{self.output()}",
            retry_on=(requests.RequestException,),
        )

    def metrics(self) -> str:
        response = requests.get(self.url + "/metrics", timeout=10)
        response.raise_for_status()
        return response.text

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int | None = None) -> int:
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_handle.close()
        return self.proc.returncode


class RunningPrometheus:
    """A real Prometheus on a free loopback port with a temporary data dir, stopped by its PID."""

    def __init__(
        self, directory: Path, config: dict[str, Any] | str, args: Sequence[str] = ()
    ) -> None:
        """`args` are extra flags; blocks placed in `directory / "tsdb"` are loaded."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "prometheus.yml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        self.log = directory / "prometheus.log"
        self._log_handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *args,
            ],
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.output()}"
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200

        wait_until(
            ready,
            timeout,
            what=lambda: f"prometheus /-/ready; its log:\n{self.output()}",
            retry_on=(requests.RequestException,),
        )

    def api(self, path: str, **params: str) -> Any:
        """The JSON answer of an HTTP API call, e.g. api("/api/v1/query", query="up")."""
        response = requests.get(self.url + path, params=params, timeout=10)
        return response.json()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (an error is an assertion failure)."""
        body = self.api("/api/v1/query", query=expr)
        assert body.get("status") == "success", f"{expr}: {body.get('error')}"
        return list(body["data"]["result"])

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_handle.close()


@pytest.fixture
def run_prometheus() -> Iterator:
    started: list[RunningPrometheus] = []

    def start(
        directory: Path, config: dict[str, Any] | str, args: Sequence[str] = ()
    ) -> RunningPrometheus:
        prometheus = RunningPrometheus(directory, config, args)
        started.append(prometheus)
        return prometheus

    yield start
    for prometheus in started:
        prometheus.stop()


@pytest.fixture
def run_exporter() -> Iterator:
    started: list[RunningExporter] = []

    def start(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
        exporter = RunningExporter(args, env, cwd)
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()


@pytest.fixture(params=["demo", "kitchen-sink"])
def rendered(request: pytest.FixtureRequest, tmp_path: Path) -> list[dict[str, Any]]:
    """Every dashboard generated from the demo spec, then from the kitchen-sink spec."""
    spec = demo_spec() if request.param == "demo" else kitchen_sink(tmp_path)
    return [render_board(board) for board in boards(spec)]
