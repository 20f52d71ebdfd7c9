"""Reading PromQL text without a parser: literals blanked, parentheses matched, `by` and
`without` groupings and the metric names an expression selects."""

from __future__ import annotations

import re

_LITERALS = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`|#[^\n]*')
_GROUPING = re.compile(r"\b(by|without)\s*\(([^()]*)\)")
_AGGREGATION = re.compile(
    r"(?<![\w:])(sum|avg|min|max|count|group|stddev|stdvar|quantile)(?![\w:])"
)
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
# whose result labels a plain reading of by/without cannot tell: give up on these
_OPAQUE = frozenset(
    [
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "label_replace",
        "label_join",
        "topk",
        "bottomk",
        "limitk",
        "limit_ratio",
        "count_values",
        "absent",
        "absent_over_time",
        "scalar",
        "vector",
        "info",
        "sort_by_label",
    ]
)
_NOT_METRICS = frozenset(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"])


def without_literals(expr: str) -> str:
    """PromQL with literals, comments, matcher contents and ranges blanked out."""
    text = _LITERALS.sub(lambda m: " " if m.group().startswith("#") else '""', expr)
    text = re.sub(r"\{[^{}]*\}", "{}", text)
    return re.sub(r"\[[^\]]*\]", " ", text)


def closing_paren(text: str, opening: int) -> int | None:
    """Index of the parenthesis closing the one at `opening`."""
    depth = 0
    for index in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return None


def groupings_of(text: str) -> list[tuple[int, str, tuple[str, ...]]] | None:
    """Each aggregation's nesting depth, by/without, and label list (`sum(x)` is by ())."""
    found = []
    for match in _AGGREGATION.finditer(text):
        rest = text[match.end() :]
        prefix = _GROUPING.match(rest.lstrip())
        if prefix is None:
            opening = match.end() + len(rest) - len(rest.lstrip())
            if not text.startswith("(", opening):
                return None
            close = closing_paren(text, opening)
            if close is None:
                return None
            after = text[close + 1 :]
            prefix = _GROUPING.match(after.lstrip())
        kind, names = (prefix.group(1), prefix.group(2)) if prefix else ("by", "")
        labels = tuple(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
        depth = text.count("(", 0, match.start()) - text.count(")", 0, match.start())
        found.append((depth, kind, labels))
    return found


def metric_names_of(text: str) -> list[str] | None:
    """The metric names a bare expression selects; None if it selects by {__name__=...} or
    uses a construct whose labels a plain reading cannot tell."""
    names: list[str] = []
    for match in _IDENTIFIER.finditer(_GROUPING.sub(" ", text)):
        word = match.group(1)
        if word in _OPAQUE:
            return None
        if not match.group(2) and word.lower() not in _NOT_METRICS:
            names.append(word)
    if re.search(r"(?<![\w:\s])\s*\{\}|^\s*\{\}", text):
        return None
    return names
