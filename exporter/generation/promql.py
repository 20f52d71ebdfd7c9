"""PromQL text building from the spec: selectors, aggregations, names (rules and dashboards)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from exporter.conventions import format_duration
from exporter.spec.labels import ratio_level
from exporter.spec.model import Kpi, Ratio, Spec

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


SPLIT_LABEL = "ratio_counter"  # tells counters of one ratio apart inside its sum
TARGET_QUANTILE = 0.95  # a histogram KPI's value is its 95th percentile (targets, report)


class Matcher(NamedTuple):
    """One label matcher of a selector: name, operator (= != =~ !~) and value."""

    name: str
    op: str
    value: str


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def parse_matchers(selector: str) -> list[Matcher]:
    """Split `a="x", b=~"y"` into matchers; raise ValueError on anything else."""
    matchers: list[Matcher] = []
    text = selector.strip().removeprefix("{").removesuffix("}").strip()
    pos = 0
    while pos < len(text):
        match = _MATCHER.match(text, pos)
        if match is None:
            raise ValueError(f"cannot read label matchers from {selector!r}")
        value = re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), match.group(3))
        matchers.append(Matcher(match.group(1), match.group(2), value))
        pos = match.end()
    return matchers


def duration(seconds: float) -> str:
    """A PromQL duration ('5m', '1h')."""
    return format_duration(seconds)


def selector(spec: Spec, matchers: Mapping[str, str] | None = None) -> str:
    """The rules' selector for our own series plus exact matchers: `{job="x", route="/a"}`."""
    parts = [spec.exporter.rule_selector()]
    parts.extend(f"{name}={quote(value)}" for name, value in sorted((matchers or {}).items()))
    return "{" + ", ".join(parts) + "}"


def selector_matchers(matchers: Mapping[str, str]) -> str:
    """Exact matchers alone: `{route="/a"}`, or nothing."""
    if not matchers:
        return ""
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(matchers.items())) + "}"


def series(name: str, spec: Spec, matchers: Mapping[str, str] | None = None) -> str:
    """A metric with the rules' selector: `errors_total{job="kpi-exporter"}`."""
    return name + selector(spec, matchers)


def aggregate(
    op: str,
    expr: str,
    by: Iterable[str] | None = None,
    without: bool = False,
    also_without: Sequence[str] = (),
) -> str:
    """`op by (a, b) (expr)`, `op without (instance) (expr)` or `op(expr)` for an empty by;
    `also_without` adds labels to the without list (a KPI's database labels)."""
    if without:
        return f"{op} without ({', '.join(('instance', *also_without))}) ({expr})"
    labels = list(by or [])
    if not labels:
        return f"{op}({expr})"
    return f"{op} by ({', '.join(labels)}) ({expr})"


def dedup(spec: Spec, expr: str, op: str = "max") -> str:
    """One series per HA pair: `max without (instance, replica) (expr)` when the spec has
    replicas (both poll the same database, so their values agree), else `expr` unchanged."""
    replicas = spec.exporter.replicas
    if replicas is None:
        return expr
    return f"{op} without (instance, {replicas.label}) ({expr})"


def with_job(labels: Iterable[str]) -> list[str]:
    """An aggregation's `by` labels with `job` first: alerts keep it for routing and inhibition."""
    return ["job", *[name for name in labels if name != "job"]]


def ratio_sum(spec: Spec, ratio: Ratio, names: Sequence[str], window: float) -> str:
    """Per-second rate of the given counters summed at the ratio's level.

    Several counters are told apart by a temporary label and joined with `or`, so that one
    without series yet (no failures so far) does not empty the sum."""
    level = ratio_level(spec, ratio)
    unique = list(dict.fromkeys(names))
    rates = [dedup(spec, f"rate({series(name, spec)}[{duration(window)}])") for name in unique]
    if len(rates) == 1:
        return aggregate("sum", rates[0], by=level, without=level is None)
    tagged = " or ".join(
        f'label_replace({expr}, "{SPLIT_LABEL}", {quote(name)}, "", "")'
        for name, expr in zip(unique, rates, strict=True)
    )
    if level is None:
        return f"sum without (instance, {SPLIT_LABEL}) ({tagged})"
    return aggregate("sum", tagged, by=level)


def histogram_quantile(q: float, bucket_rate: str, labels: Sequence[str] = ()) -> str:
    """The q-quantile of a histogram from the rate of its buckets, kept by `labels`."""
    keep = ", ".join(("le", *labels))
    return f"histogram_quantile({q:g}, sum by ({keep}) ({bucket_rate}))"


def counters_sum(exprs: Sequence[str]) -> str:
    """The sum over several counter expressions; one with no series yet counts 0."""
    terms = [f"(sum({expr}) or vector(0))" for expr in exprs]
    return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"


def kpi_value(spec: Spec, item: Kpi | Ratio, matchers: str, window: str) -> str:
    """The PromQL for the one value of a KPI or ratio, the value its target judges: a gauge's
    max (on several databases: the sum of each one's max), a counter's summed rate, a
    histogram's TARGET_QUANTILE, a ratio's good / total rates.

    `matchers` is the selector's `{...}` text and `window` the rate window, as the caller
    (dashboards: Grafana variables; report: the rules' selector) needs them."""

    def rate(name: str) -> str:
        return f"rate({name}{matchers}[{window}])"

    if isinstance(item, Ratio):
        return f"{counters_sum([rate(item.good)])} / {counters_sum(list(map(rate, item.total)))}"
    metric = spec.metric_name(item)
    if item.type == "gauge" and item.spans_databases:  # each database's state, summed
        return f"sum(max by ({spec.exporter.database_label}) ({metric}{matchers}))"
    if item.type == "gauge":
        return f"max({metric}{matchers})"
    if item.type == "counter":
        return f"sum({rate(metric)})"
    return histogram_quantile(TARGET_QUANTILE, rate(f"{metric}_bucket"))
