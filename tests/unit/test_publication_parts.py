"""A KPI on several databases publishes a part per database: the scrape body holds the family's
HELP and TYPE once, then every part's samples, in both formats and gzipped."""

from __future__ import annotations

import dataclasses
import gzip

from exporter.serving.publication import Publication
from exporter.serving.snapshot import Snapshot

HEAD = "# HELP orders_total Orders.\n# TYPE orders_total counter\n"
OM_HEAD = "# HELP orders Orders.\n# TYPE orders counter\n"


def part(database: str, value: float) -> Snapshot:
    samples = f'orders_total{{database="{database}"}} {value}\n'
    snapshot = Snapshot.build("orders_total", 1, 0.0, HEAD + samples, OM_HEAD + samples)
    return dataclasses.replace(snapshot, part=f"orders_total@{database}")


def test_one_header_then_each_part() -> None:
    publication = Publication(lambda om: b"# EOF\n" if om else b"")
    publication.publish(part("us", 2.0))
    publication.publish(part("eu", 1.0))
    single = Snapshot.build("carts", 1, 0.0, "# TYPE carts gauge\ncarts 3.0\n", None)
    publication.publish(single)
    samples = 'orders_total{database="eu"} 1.0\norders_total{database="us"} 2.0\n'
    carts = "# TYPE carts gauge\ncarts 3.0\n"
    assert publication.body(False, False).decode() == carts + HEAD + samples
    assert publication.body(True, False).decode() == carts + OM_HEAD + samples + "# EOF\n"
    for openmetrics in (False, True):
        plain = publication.body(openmetrics, False)
        assert gzip.decompress(publication.body(openmetrics, True)) == plain
    publication.withdraw("orders_total@eu")  # the remaining part brings the header itself
    assert publication.body(False, False).decode() == (
        carts + HEAD + 'orders_total{database="us"} 2.0\n'
    )
    assert gzip.decompress(publication.body(False, True)) == publication.body(False, False)
