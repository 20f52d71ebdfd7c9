"""The SVG chart builder against coordinates computed by hand."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from exporter.collection.recent import RecentPolls
from exporter.serving.statuspage import KpiRow, render
from exporter.svgchart import Frame, line_chart, polyline

SVG = "{http://www.w3.org/2000/svg}"


def _points_attr(svg: str) -> str:
    match = re.search(r'<polyline points="([^"]*)"', svg)
    assert match is not None, svg
    return match.group(1)


def test_three_points_give_the_hand_computed_polyline():
    # 104x44 with a 2 px pad: x spans 2..102 over t 0..2, y spans 42 (value 0) .. 2 (value 10)
    svg = line_chart([(0.0, 0.0), (1.0, 5.0), (2.0, 10.0)], width=104, height=44)
    assert _points_attr(svg) == "2.0,42.0 52.0,22.0 102.0,2.0"


def test_uneven_times_and_a_target_above_the_values():
    # values 1 and 3, target 5: range 1..5 over 40 px inner height, y = 42 - (v - 1) * 10
    # times 10, 12, 20: x = 2 + (t - 10) * 10
    points = [(10.0, 1.0), (12.0, 3.0), (20.0, 1.0)]
    svg = line_chart(points, width=104, height=44, target=5.0)
    assert _points_attr(svg) == "2.0,42.0 22.0,22.0 102.0,42.0"
    assert 'y1="2.0" y2="2.0"' in svg  # the target line at value 5, the top
    ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))  # well-formed


def test_flat_line_and_single_point_sit_in_the_middle():
    assert Frame([(0.0, 7.0), (4.0, 7.0)], 104, 44).coordinates() == [(2.0, 22.0), (102.0, 22.0)]
    svg = line_chart([(5.0, 3.0)], width=104, height=44)
    assert '<circle cx="52.0" cy="22.0"' in svg and "<polyline" not in svg


def test_non_finite_values_are_left_out_and_no_points_draw_nothing():
    frame = Frame([(0.0, 1.0), (1.0, math.nan), (2.0, 3.0)], 104, 44)
    assert polyline(frame.coordinates()) == "2.0,42.0 102.0,2.0"
    empty = line_chart([], width=104, height=44, target=1.0)
    assert "<polyline" not in empty and "<line" not in empty and "<circle" not in empty


def test_recent_polls_keep_a_fixed_number():
    recent = RecentPolls(size=3)
    for i in range(10):
        recent.record(float(i), float(i * 2), 0.5)
    assert [p.at for p in recent.points()] == [7.0, 8.0, 9.0]
    assert recent.points()[-1].total == 18.0


def test_status_page_row_carries_both_charts_and_escapes_the_name():
    row = KpiRow(
        name="orders<b>",
        type="gauge",
        database="app",
        schedule="every 1s",
        state="ok",
        last_run=0.0,
        duration=0.01,
        series=1,
        next_run=None,
        error=None,
        values=[(0.0, 0.0), (1.0, 5.0), (2.0, 10.0)],
        durations=[(0.0, 0.1), (2.0, 0.3)],
        target=10.0,
    )
    page = render([row]).decode()
    assert "<b>" not in page and "orders&lt;b&gt;" in page
    assert page.count("<svg") == 2
    # the value chart is 160x32: x 2..158, y 30 (0) .. 2 (10); the duration chart 160x20
    assert 'points="2.0,30.0 80.0,16.0 158.0,2.0"' in page
    assert 'points="2.0,18.0 158.0,2.0"' in page
    assert 'class="target"' in page


def test_span_fixes_the_time_axis_so_a_gap_shows():
    # window 0..100 over 100 inner px: points at t=50 and t=100 start halfway across
    svg = line_chart([(50.0, 0.0), (100.0, 10.0)], width=104, height=44, span=(0.0, 100.0))
    assert _points_attr(svg) == "52.0,42.0 102.0,2.0"
