"""The status page as a person sees it: headless Chromium renders it from a running exporter."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from conftest import need
from test_production import gauge_spec, make_values_db

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
EVIL_TABLE = "<script>alert(1)</script>"


class Rows(HTMLParser):
    """Each `tr` with an id: its class and the text of its cells, from the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, tuple[str, list[str]]] = {}
        self.links: list[str] = []
        self.scripts = 0
        self._row: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "a" and found.get("href"):
            self.links.append(found["href"] or "")
        if tag == "tr" and found.get("id"):
            self._row = found["id"]
            self.rows[self._row] = (found.get("class") or "", [])
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self.rows[self._row][1].append("".join(self._cell))
            self._cell = None
        if tag == "tr":
            self._row = None


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    need(path is not None, "chromium is not installed (Debian package chromium; make system-deps)")
    assert path is not None
    return path


def test_status_page_in_a_real_browser_shows_the_failing_kpi(run_exporter, tmp_path: Path):
    browser = _chromium()
    db = tmp_path / "values.db"
    make_values_db(db, {"healthy_gauge": 5.0})
    spec = tmp_path / "spec.yaml"
    failing = f"""
  - name: broken_gauge
    type: gauge
    database: app
    interval: 1s
    query: SELECT value FROM "{EVIL_TABLE}"
"""
    spec.write_text(gauge_spec(db, ["healthy_gauge"], extra=failing))
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()

    def browse(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        return subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, exporter.url + "/"],
            capture_output=True,
            text=True,
            timeout=120,
        )

    dumped = browse("--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    page = Rows()
    page.feed(dumped.stdout)
    assert page.scripts == 0, "an error message became a script element"
    assert {"/metrics", "/ready"} <= set(page.links)

    row_class, cells = page.rows["kpi-broken_gauge"]
    assert "failed" in row_class.split()
    assert "FAILING" in cells
    assert "gauge" in cells and "every 1s" in cells
    error = cells[-2]  # the last cell holds the charts
    assert "no such table" in error and EVIL_TABLE in error  # shown as text, escaped
    ok_class, ok_cells = page.rows["kpi-healthy_gauge"]
    assert "ok" in ok_class.split() and "ok" in ok_cells and ok_cells[-2] == ""
    assert "1" in ok_cells  # its one series

    shot = tmp_path / "status.png"
    taken = browse("--window-size=1280,800", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000
