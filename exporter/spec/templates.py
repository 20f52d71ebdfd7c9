"""The subset of Prometheus alert templates a spec may use: the one generated tests render exactly.

`{{ $value }}`, `{{ $value | humanize }}` (and humanizePercentage, humanizeDuration),
`{{ $labels.NAME }}` and `{{ printf "%.2f" $value }}`; generation/alert_templates.py renders them.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_LABEL = re.compile(r"^\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)$")
_PRINTF = re.compile(r'^printf\s+"(%\.\d+[fg])"\s+\$value$')
PIPES = ("humanize", "humanizePercentage", "humanizeDuration")


class TemplateError(ValueError):
    """A template uses something outside the supported subset."""


class Action(NamedTuple):
    """One `{{ ... }}`: a label's value, $value through printf, or $value through a pipe
    (argument "" for $value alone)."""

    kind: Literal["label", "printf", "value"]
    argument: str


def parse_action(action: str) -> Action:
    """The action inside `{{ }}`, or TemplateError when it is outside the subset."""
    label = _LABEL.match(action)
    if label:
        return Action("label", label.group(1))
    printf = _PRINTF.match(action)
    if printf:
        return Action("printf", printf.group(1))
    parts = [p.strip() for p in action.split("|")]
    if parts[0] != "$value" or len(parts) > 2:
        raise TemplateError(f"unsupported template action {{{{ {action} }}}}")
    if len(parts) == 1:
        return Action("value", "")
    if parts[1] not in PIPES:
        raise TemplateError(f"unsupported template function {parts[1]!r} (use one of {PIPES})")
    return Action("value", parts[1])


def check(template: str) -> str | None:
    """None when every action of the template is in the subset, else why not."""
    try:
        for match in ACTION.finditer(template):
            parse_action(match.group(1))
    except TemplateError as exc:
        return str(exc)
    return None
