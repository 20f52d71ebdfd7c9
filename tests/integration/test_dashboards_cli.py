"""`dashboards` commands in-process: byte-identical output, spec errors, and `dashboards push`
against a fake Grafana on a loopback port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import free_port
from support.dashboards import DEMO, demo_spec

from exporter.cli import main
from exporter.generation.dashboards.boards import boards
from exporter.generation.dashboards.rendering import render_board


class TestCli:
    def test_generate_twice_is_byte_identical(self, tmp_path: Path) -> None:
        runner = CliRunner()
        for out in ("a", "b"):
            result = runner.invoke(
                main, ["generate", "dashboards", "-c", str(DEMO), "-o", str(tmp_path / out)]
            )
            assert result.exit_code == 0, result.output
        a = {
            p.relative_to(tmp_path / "a"): p.read_bytes()
            for p in (tmp_path / "a").rglob("*")
            if p.is_file()
        }
        b = {
            p.relative_to(tmp_path / "b"): p.read_bytes()
            for p in (tmp_path / "b").rglob("*")
            if p.is_file()
        }
        assert a == b and len(a) >= 6

    def test_spec_error_exits_2(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("dashboards:\n  - title: X\n    rows: [{title: R, kpis: [nope]}]\n")
        result = CliRunner().invoke(
            main, ["generate", "dashboards", "-c", str(bad), "-o", str(tmp_path / "o")]
        )
        assert result.exit_code == 2
        assert "'nope' is not a KPI, ratio or record" in result.output
        assert not (tmp_path / "o").exists()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeGrafana:
    """A Grafana stand-in on loopback: records requests, answers like /api/folders and
    /api/dashboards/db do, or refuses dashboards with a chosen status."""

    def __init__(self, folders: list[dict[str, Any]], refuse: int | None = None) -> None:
        self.folders = folders
        self.refuse = refuse
        self.received: list[Received] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.received.append(Received(self.command, self.path, dict(self.headers), body))
                if self.headers.get("Authorization") != "Bearer s3cret-token":
                    self._answer(401, {"message": "invalid API key"})
                elif self.command == "GET" and self.path.startswith("/api/folders"):
                    self._answer(200, fake.folders)
                elif self.command == "POST" and self.path == "/api/folders":
                    fake.folders.append({"uid": "created-uid", "title": body["title"]})
                    self._answer(200, fake.folders[-1])
                elif self.command == "POST" and self.path == "/api/dashboards/db":
                    if fake.refuse is not None:
                        self._answer(fake.refuse, {"message": "refused by the test"})
                        return
                    uid = body["dashboard"]["uid"]
                    self._answer(
                        200, {"status": "success", "uid": uid, "url": f"/d/{uid}", "version": 3}
                    )
                else:
                    self._answer(404, {"message": "not found"})

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGrafana:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def push(url: str, token: str = "s3cret-token", *extra: str) -> Any:
    return CliRunner().invoke(
        main,
        ["dashboards", "push", "-c", str(DEMO), "--grafana-url", url, "--timeout", "5", *extra],
        env={"GRAFANA_TOKEN": token},
    )


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana([{"uid": "other", "title": "Other"}]) as fake:
        yield fake


class TestPush:
    def test_creates_the_folder_and_overwrites_every_dashboard(self, grafana: FakeGrafana) -> None:
        result = push(grafana.url)
        assert result.exit_code == 0, result.output
        expected = [render_board(b) for b in boards(demo_spec())]
        calls = [(r.method, r.path) for r in grafana.received]
        assert calls[:2] == [("GET", "/api/folders?limit=1000"), ("POST", "/api/folders")]
        assert grafana.received[1].body == {"title": "KPI exporter"}
        posts = [r for r in grafana.received if r.path == "/api/dashboards/db"]
        assert len(posts) == len(expected)
        for post, board in zip(posts, expected, strict=True):
            assert post.headers["Authorization"] == "Bearer s3cret-token"
            assert post.headers["Content-Type"] == "application/json"
            assert post.body["overwrite"] is True and post.body["folderUid"] == "created-uid"
            assert post.body["dashboard"] == {**board, "id": None}
            assert f"pushed {board['uid']}" in result.output
        assert "s3cret-token" not in result.output

    def test_finds_an_existing_folder_by_name(self) -> None:
        with FakeGrafana([{"uid": "kpi-folder", "title": "KPIs"}]) as fake:
            result = push(fake.url, "s3cret-token", "--folder", "KPIs")
        assert result.exit_code == 0, result.output
        assert not [r for r in fake.received if r.path == "/api/folders" and r.method == "POST"]
        posts = [r for r in fake.received if r.path == "/api/dashboards/db"]
        assert posts and all(p.body["folderUid"] == "kpi-folder" for p in posts)

    def test_token_from_a_file(self, grafana: FakeGrafana, tmp_path: Path) -> None:
        token = tmp_path / "token"
        token.write_text("s3cret-token\n")
        result = push(grafana.url, "", "--token-file", str(token))
        assert result.exit_code == 0, result.output

    def test_no_token(self, grafana: FakeGrafana) -> None:
        result = push(grafana.url, "")
        assert result.exit_code == 1
        assert "GRAFANA_TOKEN" in result.output
        assert grafana.received == []

    def test_401_says_the_token_was_rejected(self, grafana: FakeGrafana) -> None:
        result = push(grafana.url, "wrong-token")
        assert result.exit_code == 1
        assert "401 Unauthorized (invalid API key): Grafana rejected the token" in result.output
        assert "wrong-token" not in result.output

    @pytest.mark.parametrize(
        ("status", "words"),
        [
            (403, "403 Forbidden (refused by the test): the token may not write"),
            (412, "412 Precondition Failed (refused by the test): a different dashboard"),
        ],
    )
    def test_refusals_are_explained(self, status: int, words: str) -> None:
        with FakeGrafana([{"uid": "f", "title": "KPI exporter"}], refuse=status) as fake:
            result = push(fake.url)
        assert result.exit_code == 1
        assert words in result.output
        assert "POST" in result.output and "/api/dashboards/db" in result.output

    def test_unreachable_server(self) -> None:
        result = push(f"http://127.0.0.1:{free_port()}")
        assert result.exit_code == 1
        assert "cannot reach Grafana" in result.output

    def test_credentials_in_the_url_are_not_printed(self) -> None:
        result = push(f"http://admin:hunter2@127.0.0.1:{free_port()}")
        assert result.exit_code == 1
        assert "hunter2" not in result.output
