"""The status page's charts in headless Chromium: drawn where the values say, and moving."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

import requests
from conftest import wait_until
from PIL import Image
from test_prod_statuspage import CHROMIUM_FLAGS, _chromium
from test_production import gauge_spec, make_values_db

LINE_BLUE = (0x33, 0x66, 0xCC)  # the polyline's stroke, #36c
TARGET_ORANGE = (0xCC, 0x66, 0x00)  # the target line's stroke, #c60
MORE_FLAGS = ["--disable-component-update", "--disable-sync"]


def _value_chart(page: str) -> tuple[list[tuple[float, float]], float]:
    """The charted_gauge row's value chart: its polyline points and the target line's y."""
    row = page[page.index('id="kpi-charted_gauge"') :]
    row = row[: row.index("</tr>")]
    chart = row[row.index("<svg") : row.index("</svg>")]
    points = re.search(r'<polyline points="([^"]+)"', chart)
    target = re.search(r'<line class="target"[^>]* y1="([0-9.]+)"', chart)
    assert points is not None and target is not None, chart
    pairs = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    return [(x, y) for x, y in pairs], float(target.group(1))


def _set_value(db: Path, value: float) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE kpi_values SET v = ? WHERE name = 'charted_gauge'", (value,))


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(pixel[:3], colour, strict=True))


def test_status_page_chart_is_drawn_and_moves(run_exporter, tmp_path: Path):
    browser = _chromium()
    db = tmp_path / "values.db"
    make_values_db(db, {"charted_gauge": 1.0})
    spec = tmp_path / "spec.yaml"
    text = gauge_spec(db, ["charted_gauge"], interval="1s")
    spec.write_text(text.rstrip("\n") + "\n    target: {value: 5}\n")
    exporter = run_exporter(["-c", str(spec)])
    exporter.wait_ready()

    def page() -> str:
        return requests.get(exporter.url + "/", timeout=5).text

    def polled(last: float, at_least: int) -> bool:
        body = page()
        if f"last {last:g}," not in body or "<polyline" not in body:
            return False
        return len(_value_chart(body)[0]) >= at_least

    wait_until(lambda: polled(1, 2), 30, what="two polls of value 1")
    _set_value(db, 9.0)
    wait_until(lambda: polled(9, 3), 30, what="a poll of value 9")

    url = exporter.url + "/"

    def browse(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        return subprocess.run(
            [browser, *CHROMIUM_FLAGS, *MORE_FLAGS, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = browse("--dump-dom")
    assert first.returncode == 0, first.stderr[-2000:]
    points, target_y = _value_chart(first.stdout)
    # values 1 and 9 with target 5 in a 32 px chart with a 2 px pad: 1 at y=30, 9 at y=2,
    # the target halfway at 16; time runs left (x=2) to right (x=158)
    assert points[0] == (2.0, 30.0) and points[-1] == (158.0, 2.0)
    assert {y for _, y in points} == {30.0, 2.0}
    assert target_y == 16.0
    assert [x for x, _ in points] == sorted(x for x, _ in points)

    shot = tmp_path / "status.png"
    taken = browse("--window-size=1600,400", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    pixels = Image.open(shot).convert("RGB")
    colours = [pixels.getpixel((x, y)) for x in range(pixels.width) for y in range(pixels.height)]
    assert sum(_near(c, LINE_BLUE) for c in colours) >= 20, "no value line drawn"  # type: ignore[arg-type]
    assert sum(_near(c, TARGET_ORANGE) for c in colours) >= 20, "no target line drawn"  # type: ignore[arg-type]

    _set_value(db, 3.0)
    wait_until(lambda: polled(3, len(points) + 1), 30, what="a poll of value 3")
    second = browse("--dump-dom")
    assert second.returncode == 0, second.stderr[-2000:]
    moved, _ = _value_chart(second.stdout)
    assert moved != points and len(moved) > len(points)
    # now the range is still 1..9: the last poll (3) sits at 30 - 2 * 28 / 8 = 23
    assert moved[-1] == (158.0, 23.0) and moved[0] == (2.0, 30.0)
