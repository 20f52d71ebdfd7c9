"""Units and colour thresholds of panels: alert thresholds and targets become bounds and
steps; a histogram's quantile alerts are read from the rules the spec writes."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from exporter.generation.dashboards.model import OFF_TARGET, OK, SEVERITY_COLORS
from exporter.generation.dashboards.parsing import closing_paren, metric_names_of, without_literals
from exporter.generation.promql import parse_matchers
from exporter.spec.model import Kpi, Spec, Threshold
from exporter.spec.model import Target as Goal

_RANK = {OK: 0, OFF_TARGET: 1, "blue": 2, "orange": 3, "red": 4}

# KPI units (free text in the spec) to Grafana unit ids; a Grafana id passes through as is.
UNIT_ALIASES = {
    "": "short",
    "count": "short",
    "seconds": "s",
    "second": "s",
    "milliseconds": "ms",
    "millisecond": "ms",
    "ratio": "percentunit",
    "fraction": "percentunit",
    "usd": "currencyUSD",
    "dollars": "currencyUSD",
    "eur": "currencyEUR",
    "euros": "currencyEUR",
    "gbp": "currencyGBP",
    "bytes": "bytes",
    "byte": "bytes",
}
# a subset of Grafana's unit ids (packages/grafana-data/src/valueFormats/categories.ts)
_UNIT_IDS = (
    "none short percent percentunit sishort locale s ms µs ns m h d dtdurations dtdurationms "
    "bytes decbytes bits decbits kbytes mbytes gbytes currencyUSD currencyEUR currencyGBP "
    "currencyJPY currencyCHF currencyINR cps ops reqps rps wps iops cpm opm rpm wpm "
    "dateTimeAsIso dateTimeFromNow bool bool_yes_no bool_on_off celsius"
)
GRAFANA_UNITS = frozenset(_UNIT_IDS.split())


def grafana_unit(unit: str) -> str:
    """Grafana's unit id for a KPI unit; free text (tokens, users) shows as a plain number."""
    if unit in GRAFANA_UNITS:
        return unit
    return UNIT_ALIASES.get(unit.strip().lower(), "short")


# a unit the KPI's name ends with, when the spec gives none (Prometheus' naming rules)
_NAME_UNITS = {"seconds": "s", "bytes": "bytes", "ratio": "percentunit"}
# Grafana's built-in units of a thing counted per second or per minute ("requests" here
# stands for a request counter)
_PER = {
    "s": {
        "short": "cps",
        "requests": "reqps",
        "bytes": "Bps",
        "decbytes": "Bps",
        "bits": "bps",
        "decbits": "bps",
    },
    "min": {"short": "cpm", "requests": "reqpm"},
}
PER_SECOND = frozenset(
    ["cps", "ops", "reqps", "rps", "wps", "iops", "Bps", "bps", "rowsps", "recps"]
)


def kpi_unit(kpi: Kpi) -> str:
    """Grafana's unit of a KPI's values: the spec's unit, else the one its name ends with."""
    if kpi.unit:
        return grafana_unit(kpi.unit)
    return _NAME_UNITS.get(kpi.name.removesuffix("_total").rsplit("_", 1)[-1], "short")


def per_period(unit: str, period: str, word: str = "") -> str:
    """Grafana's unit for `unit` per `period` (s, min, h, d): a built-in id where Grafana has
    one (cps, reqps, Bps, cpm), else Grafana's custom units: counts of a word scaled
    (`count:tokens/s` shows 1.2K tokens/s), money and the rest as a suffix (`suffix:USD/h`)."""
    if period == "s" and unit in PER_SECOND:
        return unit
    if word:
        return f"count:{word}/{period}"
    builtin = _PER.get(period, {}).get(unit)
    if builtin is not None:
        return builtin
    if unit == "short":
        return f"count:/{period}"
    return f"suffix:{unit.removeprefix('currency')}/{period}"


def rate_unit(kpi: Kpi) -> str:
    """Grafana's unit of a counter's per-second rate: requests per second for a request
    counter (by name or unit), bytes per second for bytes, money or a unit word per second,
    counts per second otherwise."""
    unit = kpi_unit(kpi)
    word = kpi.unit.strip().lower()
    if unit == "short" and word in ("", "count", "request", "requests"):
        requests = {"request", "requests"} & {*kpi.name.removesuffix("_total").split("_"), word}
        return per_period("requests" if requests else "short", "s")
    return per_period(unit, "s", unit_words(kpi))


def unit_words(kpi: Kpi) -> str:
    return kpi.unit if kpi.unit and grafana_unit(kpi.unit) == "short" else ""


@dataclass(frozen=True)
class Bound:
    """A value boundary on a panel: beyond it (above or below) the colour applies."""

    value: float
    above: bool
    color: str
    note: str = ""  # where the bound comes from, when the panel shows more than it applies to


def bounds_for(alerts: Iterable[Threshold], target: Goal | None, view: str) -> list[Bound]:
    """Alert thresholds and the target that apply to a panel showing `view` (value or rate)."""
    result = []
    for alert in alerts:
        bound = alert.above if alert.above is not None else alert.below
        assert bound is not None
        if view == "rate":
            if alert.rate is not None:
                value = bound
            elif alert.increase is not None:
                value = bound / alert.increase  # the same mean rate over the alert's window
            else:
                continue
        elif alert.rate is not None or alert.increase is not None:
            continue
        else:
            value = bound
        result.append(Bound(value, alert.above is not None, SEVERITY_COLORS[alert.severity]))
    if target is not None:
        # the wrong side of the target is yellow: off target, though no alert
        result.append(Bound(target.value, target.direction == "below", OFF_TARGET))
    return result


def steps_for(bounds: Sequence[Bound]) -> tuple[tuple[float | None, str], ...]:
    """Grafana threshold steps (ascending) colouring each interval by its worst violated bound.
    Red is where the panel's most severe alert fires: a warning alert with no critical one
    beside it colours red (the brief: red below 90%), orange only under a critical one."""
    points = sorted({b.value for b in bounds})
    if not points:
        return ((None, OK),)
    if all(b.color != "red" for b in bounds):
        bounds = [dataclasses.replace(b, color="red") if b.color == "orange" else b for b in bounds]

    def color_at(x: float) -> str:
        worst = OK
        for b in bounds:
            if (b.above and x > b.value) or (not b.above and x < b.value):
                worst = max(worst, b.color, key=_RANK.__getitem__)
        return worst

    samples = [points[0] - 1.0]
    samples += [(a + b) / 2 for a, b in itertools.pairwise(points)]
    samples.append(points[-1] + 1.0)
    steps: list[tuple[float | None, str]] = [(None, color_at(samples[0]))]
    for point, sample in zip(points, samples[1:], strict=True):
        color = color_at(sample)
        if color != steps[-1][1]:
            steps.append((point, color))
    return tuple(steps)


def describe_bounds(bounds: Sequence[Bound], per_second: bool) -> str:
    words = {"red": "critical", "orange": "warning", "blue": "info", OFF_TARGET: "off target"}
    suffix = "/s" if per_second else ""
    parts = [
        f"{words[b.color]} {'above' if b.above else 'below'} {b.value:g}{suffix}"
        + (f" ({b.note})" if b.note else "")
        for b in sorted(bounds, key=lambda b: (b.value, b.color, b.note))
    ]
    return f" Thresholds: {', '.join(parts)}." if parts else ""


_COMPARED = re.compile(r"\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_GUARD = re.compile(r"(?:and(?![\w:]).*)?", re.DOTALL)
_QUANTILE_CALL = re.compile(r"\s*histogram_quantile\s*(\()\s*(\d*\.?\d+)\s*,")
_MATCHERS = r"\s*\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}"


def quantile_threshold(spec: Spec, kpi: Kpi, expr: str) -> tuple[float, bool, float] | None:
    """(Q, above, N) of an alert `histogram_quantile(Q, …<kpi>_bucket…) > N` over every series
    of the KPI (the rules' selector at most), alone or `and` a guard; None for any other
    shape."""
    text = without_literals(expr)
    call = _QUANTILE_CALL.match(text)
    if call is None or re.search(r"(?<![\w:])offset(?![\w:])|@", text):
        return None
    close = closing_paren(text, call.start(1))
    compared = _COMPARED.match(text, close + 1) if close is not None else None
    q = float(call.group(2))
    # `… > N and <a traffic guard>` still draws N: the guard only silences low traffic
    if compared is None or not 0 < q < 1 or not _GUARD.fullmatch(text, compared.end()):
        return None
    bucket = f"{spec.metric_name(kpi)}_bucket"
    if metric_names_of(text[call.end() : close]) != [bucket]:
        return None
    allowed = set(parse_matchers(spec.exporter.rule_selector()))
    selectors = re.finditer(rf"(?<![\w:]){re.escape(bucket)}(?![\w:])({_MATCHERS})?", expr)
    inside = text[call.end() : close].count(bucket)  # the quantile's, not the guard's
    for found in itertools.islice(selectors, inside):
        try:
            matchers = parse_matchers(found.group(2) or "")
        except ValueError:
            return None
        if not set(matchers) <= allowed:
            return None  # narrowed to some series: not the panel's threshold
    return q, compared.group(1).startswith(">"), float(compared.group(2))


def quantile_alert_bounds(spec: Spec, kpi: Kpi) -> dict[float, list[Bound]]:
    """Bounds of the free-form quantile alerts on a histogram KPI, by quantile."""
    found: dict[float, list[Bound]] = {}
    for alert in spec.alerts:
        if alert.kpi not in (kpi.name, spec.metric_name(kpi)):
            continue
        reading = quantile_threshold(spec, kpi, alert.expr)
        if reading is not None:
            q, above, value = reading
            note = f"p{q * 100:g} alert {alert.name}"
            bound = Bound(value, above, SEVERITY_COLORS[alert.severity], note)
            found.setdefault(q, []).append(bound)
    return found
