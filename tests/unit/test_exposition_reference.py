"""Exposition text and scrape bodies against a reference renderer written here from the format's
description, hand-written literals, and zlib/gzip decoding (issue 14's surviving mutations)."""

from __future__ import annotations

import gzip
import math
import zlib
from typing import Any

import pytest
from support.kpis import kpi as make_kpi

from exporter.collection.series import render_plain
from exporter.serving.exposition import (
    OPENMETRICS_CONTENT_TYPE,
    PARALLEL_DEFLATE,
    TEXT_CONTENT_TYPE,
    deflate_segment,
    escape_help,
    family_header,
    format_value,
    gzip_from_segments,
    label_block,
)
from exporter.serving.publication import Publication
from exporter.sources.base import Rows

_ESCAPES = {"\\": "\\\\", "\n": "\\n", '"': '\\"'}


def reference_gauge(metric: str, help_text: str, rows: list[tuple[str, float]]) -> str:
    """The text format (0.0.4) of one labelled gauge family, character by character."""
    out = ""
    if help_text:
        help_out = "".join("\\\\" if c == "\\" else "\\n" if c == "\n" else c for c in help_text)
        out += f"# HELP {metric} {help_out}\n"
    out += f"# TYPE {metric} gauge\n"
    for label, value in rows:
        escaped = "".join(_ESCAPES.get(c, c) for c in label)
        if math.isnan(value):
            shown = "NaN"
        elif math.isinf(value):
            shown = "+Inf" if value > 0 else "-Inf"
        else:
            shown = repr(float(value))
        out += f'{metric}{{queue="{escaped}"}} {shown}\n'
    return out


HOSTILE = ['a"b', "c\\d", "e\nf", '"', "\\", "\n", '\\"\n', "plain", "ünï", "x y=z,}"]


@pytest.mark.parametrize("general", [False, True])
def test_render_plain_matches_the_reference(general: bool) -> None:
    rows: list[tuple[Any, Any]] = [(label, i * 1.5) for i, label in enumerate(HOSTILE)]
    if general:  # a NULL value sends the batch through the per-row path
        rows.append(("skipped", None))
    kpi = make_kpi(
        interval="30s", name="depth", labels=["queue"], help='Depth \\ of "queues"\nper name'
    )
    snapshot, skipped = render_plain(kpi, "depth", {}, Rows(("queue", "value"), rows), 0)
    expected = reference_gauge("depth", kpi.help, [(q, float(v)) for q, v in rows if v is not None])
    assert snapshot.text.decode() == expected
    assert skipped == (1 if general else 0)


def test_special_values_match_the_reference() -> None:
    values = [math.nan, math.inf, -math.inf, 1e300, -0.5]
    kpi = make_kpi(interval="30s", name="depth", labels=["queue"])
    rows = [(f"q{i}", v) for i, v in enumerate(values)]
    snapshot, _ = render_plain(kpi, "depth", {}, Rows(("queue", "value"), rows), 0)
    assert snapshot.text.decode() == reference_gauge("depth", "", rows)


def test_help_quotes_are_escaped_in_openmetrics_only() -> None:
    assert family_header("m", "counter", 'say "hi"\\\n', True) == (
        '# HELP m say \\"hi\\"\\\\\\n\n# TYPE m counter\n'
    )
    assert family_header("m", "counter", 'say "hi"\\\n', False) == (
        '# HELP m say "hi"\\\\\\n\n# TYPE m counter\n'
    )
    assert family_header("m", "gauge", "", True) == "# TYPE m gauge\n"
    assert escape_help('"', True) == '\\"' and escape_help('"', False) == '"'


def test_format_value_and_label_block_literals() -> None:
    assert TEXT_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert OPENMETRICS_CONTENT_TYPE == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert [format_value(v) for v in (math.inf, -math.inf, math.nan, 3, 0.1)] == [
        "+Inf",
        "-Inf",
        "NaN",
        "3.0",
        "0.1",
    ]
    assert label_block([]) == ""
    assert label_block([("a", 'x"'), ("b", "y")]) == '{a="x\\"",b="y"}'


def numbered_lines(size: int) -> bytes:
    """Text of at least `size` bytes whose every line differs, so a reordering shows."""
    lines = []
    total = 0
    index = 0
    while total < size:
        line = f'metric{{n="{index}"}} {index * 7 % 1000}\n'.encode()
        lines.append(line)
        total += len(line)
        index += 1
    return b"".join(lines)


@pytest.mark.parametrize("size", [PARALLEL_DEFLATE - 1, PARALLEL_DEFLATE, 3 * PARALLEL_DEFLATE])
def test_deflate_segments_inflate_in_order(size: int) -> None:
    data = numbered_lines(size)
    segment = deflate_segment(data)
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(segment) == data
    head = b"# HELP first\n"
    body = gzip_from_segments(
        [deflate_segment(head), segment], zlib.crc32(data, zlib.crc32(head)), len(head + data)
    )
    assert gzip.decompress(body) == head + data


def test_gzip_trailer_holds_crc_and_size_modulo_two_to_the_32() -> None:
    body = gzip_from_segments([deflate_segment(b"abc")], zlib.crc32(b"abc") | (1 << 32), 3)
    assert gzip.decompress(body) == b"abc"
    assert body[-8:] == zlib.crc32(b"abc").to_bytes(4, "little") + (3).to_bytes(4, "little")
    assert body[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def gauge_snapshot(name: str, rows: list[tuple[str, float]]) -> Any:
    kpi = make_kpi(interval="30s", name=name, labels=["queue"], max_series=100000)
    return render_plain(kpi, name, {}, Rows(("queue", "value"), rows), 0)[0]


class TestPublicationBody:
    def test_large_body_in_kpi_order_then_self_metrics(self) -> None:
        tails = {False: b"up_self 1.0\n", True: b"up_self 1.0\n"}  # OpenMetrics gains its EOF
        publication = Publication(lambda om: tails[om])
        many = [(f"queue-{i:07d}", float(i)) for i in range(40000)]
        b = gauge_snapshot("b_depth", many)
        a = gauge_snapshot("a_depth", many[:3])
        publication.publish(b)
        publication.publish(a)
        expected = a.text + b.text + b"up_self 1.0\n"
        assert len(expected) > PARALLEL_DEFLATE
        assert publication.body(False, gzip=False) == expected
        assert gzip.decompress(publication.body(False, gzip=True)) == expected
        assert gzip.decompress(publication.body(True, gzip=True)) == expected + b"# EOF\n"

    def test_eof_once_and_changes_seen(self) -> None:
        tail = [b"self 1.0\n# EOF\n"]
        publication = Publication(lambda om: tail[0] if om else b"self 1.0\n")
        publication.publish(gauge_snapshot("a", [("q", 1.0)]))
        assert (
            publication.body(True, False) == b'# TYPE a gauge\na{queue="q"} 1.0\nself 1.0\n# EOF\n'
        )
        publication.publish(gauge_snapshot("a", [("q", 2.0)]))
        tail[0] = b"self 2.0\n"
        assert (
            publication.body(True, False) == b'# TYPE a gauge\na{queue="q"} 2.0\nself 2.0\n# EOF\n'
        )
        assert gzip.decompress(publication.body(True, True)) == publication.body(True, False)
        assert gzip.decompress(publication.body(True, True)) == publication.body(True, False)
        publication.withdraw("missing")
        publication.withdraw("a")
        assert publication.body(False, False) == b"self 1.0\n"
        assert dict(publication.snapshots()) == {}
