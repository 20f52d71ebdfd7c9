"""Alert templates rendered as Prometheus renders them: the subset spec/templates.py allows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from exporter.spec.templates import ACTION, parse_action


def go_value(value: float) -> str:
    """A float64 as Go's fmt %v prints it (shortest digits, exponent from 1e6 or below 1e-4)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # position of the decimal point
    exp = point - 1
    minus = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{minus}{text}{'0' * (point - len(text))}"
    return f"{minus}{text[:point]}.{text[point:]}"


def _g4(value: float) -> str:
    return format(value, ".4g")


def humanize(value: float) -> str:
    """Prometheus' humanize: SI prefixes, four significant digits."""
    if value == 0 or math.isnan(value) or math.isinf(value):
        return _g4(value)
    prefix = ""
    if abs(value) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix = p
            value /= 1000
        return _g4(value) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = p
        value *= 1000
    return _g4(value) + prefix


def humanize_duration(value: float) -> str:
    """Prometheus' humanizeDuration: '1d 2h 3m 4s', '12.5s', '250ms'."""
    if math.isnan(value) or math.isinf(value):
        return _g4(value)
    if value == 0:
        return _g4(value) + "s"
    if abs(value) >= 1:
        sign = "-" if value < 0 else ""
        value = abs(value)
        whole = int(value)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(value)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(value) >= 1:
            break
        prefix = p
        value *= 1000
    return f"{_g4(value)}{prefix}s"


def humanize_percentage(value: float) -> str:
    """Prometheus' humanizePercentage: 0.5 -> '50%'."""
    return _g4(value * 100) + "%"


_PIPED = {
    "": go_value,
    "humanize": humanize,
    "humanizePercentage": humanize_percentage,
    "humanizeDuration": humanize_duration,
}


def _action(text: str, labels: Mapping[str, str], value: float) -> str:
    action = parse_action(text)
    if action.kind == "label":
        return labels.get(action.argument, "")
    if action.kind == "printf":
        return action.argument % value
    return _PIPED[action.argument](value)


def render(template: str, labels: Mapping[str, str], value: float) -> str:
    """Expand `{{ $value | humanize }}`, `{{ $labels.x }}` and printf of $value; else raise."""
    return ACTION.sub(lambda m: _action(m.group(1), labels, value), template)
