"""Generated rules as values (alert, record, group) and the wording every rule family shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from exporter.spec.model import Kpi, Spec


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule; labels and annotations are sorted (name, value) pairs."""

    alert: str
    expr: str
    for_: float
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)

    def annotation(self, name: str) -> str | None:
        return dict(self.annotations).get(name)


@dataclass(frozen=True)
class RecordRule:
    """One recording rule: `level:metric:operations` = expr, with constant labels added."""

    record: str
    expr: str
    labels: tuple[tuple[str, str], ...] = ()


Rule = AlertRule | RecordRule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[Rule, ...]
    interval: float | None = None  # seconds; None leaves Prometheus' evaluation_interval


@dataclass(frozen=True)
class RuleSet:
    """Everything generated: alert groups and recording-rule groups, in output order."""

    alerts: tuple[RuleGroup, ...]
    records: tuple[RuleGroup, ...]


def number(value: float | Fraction) -> str:
    """A number as PromQL and people read it: 10 rather than 10.0."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        return format(float(value), ".6g")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _pairs(mapping: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def alert_rule(
    spec: Spec,
    name: str,
    expr: str,
    for_: float,
    labels: Mapping[str, str],
    summary: str,
    description: str,
) -> AlertRule:
    """An alert with summary, description and the spec's runbook link as annotations."""
    annotations = {"summary": summary, "description": description}
    pattern = spec.exporter.runbook_url
    if pattern:
        kpi = labels.get("kpi", "")
        annotations["runbook_url"] = pattern.replace("{alertname}", name).replace("{kpi}", kpi)
    return AlertRule(name, expr, for_, _pairs(labels), _pairs(annotations))


def capital(text: str) -> str:
    """The text with its first letter upper-cased (sentence starts)."""
    return text[:1].upper() + text[1:]


def label_list(labels: Iterable[str]) -> str:
    """` (a={{ $labels.a }}, ...)` naming an alert's labels in its description; job left out."""
    shown = [f"{name}={{{{ $labels.{name} }}}}" for name in labels if name != "job"]
    return f" ({', '.join(shown)})" if shown else ""


def confirm_for(spec: Spec) -> float:
    """How long a plain failure condition must hold: a minute and two scrapes."""
    return max(60.0, 2 * spec.exporter.scrape_interval)


def poll_confirm_for(spec: Spec, kpi: Kpi) -> float:
    """Two poll intervals of a KPI, and at least two scrapes."""
    return max(2 * kpi.period, 2 * spec.exporter.scrape_interval)
