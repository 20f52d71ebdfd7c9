"""Snapshot: one KPI's last good result, immutable, rendered once in both formats."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.serving.exposition import deflate_segment


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Exposition bytes (and their deflate segments) built by the poll, never per scrape."""

    kpi: str
    series: int
    taken_at: float
    text: bytes
    openmetrics: bytes
    text_deflate: bytes
    openmetrics_deflate: bytes
    total: float | None = None  # the samples' sum across series (histograms: the count)
    part: str = ""  # the publication's key: a KPI on several databases has a part per database
    # where the samples start, after the family's # HELP and # TYPE lines; the deflate
    # segments are cut there too, so a later part of the same family can go without them
    text_start: int = 0
    openmetrics_start: int = 0
    text_samples_deflate: bytes = b""
    openmetrics_samples_deflate: bytes = b""

    @property
    def key(self) -> str:
        return self.part or self.kpi

    def whole(self, openmetrics: bool) -> tuple[bytes, bytes]:
        """The exposition in one format and its deflate segment."""
        if openmetrics:
            return self.openmetrics, self.openmetrics_deflate
        return self.text, self.text_deflate

    def samples(self, openmetrics: bool) -> tuple[memoryview, bytes]:
        """The exposition without the family's HELP and TYPE lines, and its deflate segment."""
        if openmetrics:
            return memoryview(self.openmetrics)[self.openmetrics_start :], (
                self.openmetrics_samples_deflate
            )
        return memoryview(self.text)[self.text_start :], self.text_samples_deflate

    @classmethod
    def build(
        cls,
        kpi: str,
        series: int,
        taken_at: float,
        text: str,
        om: str | None,
        total: float | None = None,
    ) -> Snapshot:
        """`om` None means the OpenMetrics form is byte-identical to the text form."""
        text_bytes = text.encode("utf-8", "replace")
        text_start, text_head, text_samples = _segments(text_bytes)
        if om is None or om == text:
            om_bytes, om_start, om_head, om_samples = (
                text_bytes,
                text_start,
                text_head,
                text_samples,
            )
        else:
            om_bytes = om.encode("utf-8", "replace")
            om_start, om_head, om_samples = _segments(om_bytes)
        return cls(
            kpi,
            series,
            taken_at,
            text_bytes,
            om_bytes,
            text_head + text_samples,
            om_head + om_samples,
            total,
            "",
            text_start,
            om_start,
            text_samples,
            om_samples,
        )


def _segments(data: bytes) -> tuple[int, bytes, bytes]:
    """Where the samples start (after the leading comment lines), and the deflate segments of
    the lines before and from there."""
    start = 0
    while data.startswith(b"#", start):
        end = data.find(b"\n", start)
        if end < 0:
            break
        start = end + 1
    view = memoryview(data)
    head = deflate_segment(view[:start]) if start else b""
    return start, head, deflate_segment(view[start:])
