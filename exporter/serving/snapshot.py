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
        text_deflate = deflate_segment(text_bytes)
        if om is None or om == text:
            return cls(
                kpi, series, taken_at, text_bytes, text_bytes, text_deflate, text_deflate, total
            )
        om_bytes = om.encode("utf-8", "replace")
        om_deflate = deflate_segment(om_bytes)
        return cls(kpi, series, taken_at, text_bytes, om_bytes, text_deflate, om_deflate, total)
