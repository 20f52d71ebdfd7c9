"""The exporter's own metrics as exposed agree with conventions.SelfMetric, name and help."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from exporter.conventions import SelfMetric
from exporter.runtime.sharding import Shard, declare
from exporter.serving.selfmetrics import SelfMetrics

# families whose samples carry a suffix on the family name in the text format
SUFFIXES = {"counter": ("_total",), "info": ("_info",), "histogram": ("_bucket", "_count", "_sum")}


def test_exposed_self_metrics_are_the_conventions() -> None:
    metrics = SelfMetrics()
    metrics.declare([("orders", "app")])  # a labelled series for the counter and histogram
    declare(Shard(0, 2), metrics.registry)
    text = metrics.render(openmetrics=False).decode()
    families = [
        f
        for f in text_string_to_metric_families(text)
        if f.name.startswith("kpi_exporter_") and not f.name.endswith("_created")
    ]
    # what PromQL queries: the family name plus the suffix its type adds to samples
    queried = {}
    for family in families:
        suffixes = SUFFIXES.get(family.type, ("",))
        names = {s.name for s in family.samples}
        assert names <= {family.name + suffix for suffix in suffixes}, family.name
        name = family.name if family.type == "histogram" else family.name + suffixes[0]
        queried[name] = family.documentation
    assert queried == {metric.value: metric.help for metric in SelfMetric}
