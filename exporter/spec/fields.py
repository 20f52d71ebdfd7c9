"""Reusable constrained field types for the spec: durations, metric and label names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset({"le", "quantile"})
_DATABASE_PATTERN = re.compile(r"^[a-zA-Z0-9_*?!\[\]-]{1,128}$")


def parse_duration(value: object) -> float:
    """Seconds from '500ms', '30s', '5m', '1h', '1d', '1w' or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a string like '30s', '5m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(
                f"{value!r} is not a duration: use a number with ms, s, m, h, d or w, e.g. '30s'"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("a duration is a string like '30s', '5m' or '1h'")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def _metric_name(value: str) -> str:
    if not METRIC_NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        )
    if value.startswith("__"):
        raise ValueError(f"{value!r}: names starting with '__' are reserved by Prometheus")
    return value


def _label_name(value: str) -> str:
    if not LABEL_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    if value.startswith("__"):
        raise ValueError(f"{value!r}: label names starting with '__' are reserved")
    if value in RESERVED_LABELS:
        raise ValueError(f"{value!r} is a reserved label name")
    return value


def _database_ref(value: object) -> object:
    """A KPI's `database:`: a name or fnmatch glob (`tenant_*`), or a non-empty list of them."""
    entries = value if isinstance(value, list) else [value]
    if not entries:
        raise ValueError("name at least one database")
    for entry in entries:
        if not isinstance(entry, str) or not _DATABASE_PATTERN.match(entry):
            raise ValueError(
                f"{entry!r} is not a database name or glob: give a name under 'databases', "
                "a list of names, or a glob such as 'tenant_*'"
            )
    if isinstance(value, list):
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
MetricName = Annotated[str, AfterValidator(_metric_name)]
LabelName = Annotated[str, AfterValidator(_label_name)]
Identifier = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$", max_length=128)]
DatabaseRef = Annotated[str | list[str], BeforeValidator(_database_ref)]
CamelCaseName = Annotated[str, Field(pattern=r"^[A-Z][a-zA-Z0-9]*$", max_length=40)]


def is_glob(pattern: str) -> bool:
    """A `database:` entry holding fnmatch wildcards, rather than one database's name."""
    return any(c in pattern for c in "*?[")
