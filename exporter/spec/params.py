"""`:name` query placeholders: found and rewritten per driver, never by string formatting."""

from __future__ import annotations

import re

BUILTIN_PARAMS = ("now", "last_success")
CURSOR_PARAMS = ("cursor", "tiebreak", "batch", "settled")

# Skipped whole: quoted strings and identifiers, comments, dollar quotes, and '::' casts.
_TOKEN = re.compile(
    r"""
    (?P<skip>
        '(?:[^']|'')*'
      | "(?:[^"]|"")*"
      | --[^\n]*
      | /\*.*?\*/
      | (?P<dollar>\$[a-zA-Z_]*\$).*?(?P=dollar)
      | ::
    )
    | (?<![:\w]):(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)
    | (?P<percent>%)
    """,
    re.VERBOSE | re.DOTALL,
)


def placeholders(query: str) -> set[str]:
    """The names of every `:name` placeholder in a query."""
    return {m.group("name") for m in _TOKEN.finditer(query) if m.group("name")}


def to_pyformat(query: str) -> str:
    """Rewrite `:name` as psycopg's `%(name)s`, doubling literal percent signs."""

    def replace(match: re.Match[str]) -> str:
        if match.group("name"):
            return f"%({match.group('name')})s"
        # psycopg reads '%' everywhere, quoted text included
        return match.group(0).replace("%", "%%")

    return _TOKEN.sub(replace, query)
