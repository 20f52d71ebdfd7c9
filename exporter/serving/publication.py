"""Publication: the snapshots in force and the scrape body joined from them, cached per change."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.serving.exposition import deflate_segment, gzip_from_segments
from exporter.serving.snapshot import Snapshot

_EOF = b"# EOF\n"


@dataclass(frozen=True)
class _Joined:
    data: bytes
    deflate: bytes
    crc: int


class Publication:
    """Polls publish snapshots here; scrapes read them without ever touching a database."""

    def __init__(self, self_metrics: Callable[[bool], bytes]) -> None:
        self._self_metrics = self_metrics
        self._snapshots: Mapping[str, Snapshot] = {}
        self._lock = threading.Lock()
        self._joined: dict[bool, tuple[Mapping[str, Snapshot], _Joined]] = {}
        self._tail: tuple[bytes, bytes] | None = None

    def publish(self, snapshot: Snapshot) -> None:
        with self._lock:
            snapshots = dict(self._snapshots)
            snapshots[snapshot.key] = snapshot
            self._snapshots = dict(sorted(snapshots.items()))

    def withdraw(self, key: str) -> None:
        """Remove one part: a KPI's, or one database's part of a KPI on several."""
        with self._lock:
            if key in self._snapshots:
                self._snapshots = {k: v for k, v in self._snapshots.items() if k != key}

    def snapshots(self) -> Mapping[str, Snapshot]:
        return self._snapshots

    def _join(self, openmetrics: bool) -> _Joined:
        snapshots = self._snapshots  # one consistent set, replaced whole by publish()
        cached = self._joined.get(openmetrics)
        if cached is not None and cached[0] is snapshots:
            return cached[1]
        parts: list[bytes | memoryview] = []
        segments: list[bytes] = []
        family = None
        # sorted by key, a KPI's parts (`name@database`) are adjacent: the family's HELP and
        # TYPE lines come once, from its first part
        for s in snapshots.values():
            data, deflate = s.whole(openmetrics) if s.kpi != family else s.samples(openmetrics)
            parts.append(data)
            segments.append(deflate)
            family = s.kpi
        data = b"".join(parts)
        deflate = b"".join(segments)
        joined = _Joined(data, deflate, zlib.crc32(data))
        self._joined[openmetrics] = (snapshots, joined)
        return joined

    def body(self, openmetrics: bool, gzip: bool) -> bytes:
        """The whole /metrics response body: KPI series, then the exporter's own."""
        joined = self._join(openmetrics)
        tail = self._self_metrics(openmetrics)
        if openmetrics:
            tail = tail.removesuffix(_EOF) + _EOF
        if not gzip:
            return joined.data + tail
        crc = zlib.crc32(tail, joined.crc)
        return gzip_from_segments(
            [joined.deflate, self._tail_deflate(tail)], crc, len(joined.data) + len(tail)
        )

    def _tail_deflate(self, tail: bytes) -> bytes:
        """The self-metrics' deflate segment, reused while their render is reused."""
        cached = self._tail
        if cached is not None and cached[0] == tail:
            return cached[1]
        segment = deflate_segment(tail)
        self._tail = (tail, segment)
        return segment
