"""Which series an alert reads, and whether Prometheus holds any sample of them in a window:
an alert whose every input is empty there reports "no data", not a quiet zero."""

from __future__ import annotations

import math
import re

from exporter.generation.dashboards.parsing import without_literals

# label lists, whose names are not metrics: by (...), on (...), group_left (...), ...
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    ["and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"]
)


def metric_names(expr: str) -> list[str]:
    """The metric names `expr` selects (functions, keywords, label lists, matchers, literals
    and durations left out), sorted; a selector by `{__name__=…}` alone is not seen."""
    text = _LABEL_LISTS.sub(" ", without_literals(expr))
    names = {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if not match.group(2) and match.group(1).lower() not in _KEYWORDS
    }
    return sorted(names)


def probe(name: str, since: float, until: float) -> tuple[str, float]:
    """An instant query, to run at `until`, that returns a series when `name` has a sample in
    (since, until]."""
    seconds = max(1, math.ceil(until - since))
    return f'group(last_over_time({{__name__="{name}"}}[{seconds}s]))', until
