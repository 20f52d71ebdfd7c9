"""`:name` query placeholders: found and rewritten per driver, never by string formatting."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

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


# How a driver spells a bound parameter (PEP 249's paramstyle names, plus DuckDB's `$name`).
ParamStyle = Literal["named", "pyformat", "dollar", "sqlalchemy", "qmark"]


@lru_cache(maxsize=4096)
def to_paramstyle(query: str, style: ParamStyle) -> str:
    """The query with its `:name` placeholders in a driver's style; values stay bound.

    named: `:name` as written (sqlite3, SQLAlchemy's text()); pyformat: `%(name)s` with
    literal percent signs doubled (psycopg, PyMySQL, mysqlclient); dollar: `$name` (DuckDB);
    sqlalchemy: `:name` for text(), other colons it would misread escaped.
    qmark: `?` read with MySQL's lexing (MariaDB Connector/Python; to_qmark_mysql also gives
    the names in the order their values are bound).
    """
    if style == "named":
        return query
    if style == "pyformat":
        return to_pyformat(query)
    if style == "dollar":
        return _TOKEN.sub(lambda m: f"${m.group('name')}" if m.group("name") else m.group(0), query)
    if style == "sqlalchemy":
        return to_sqlalchemy_text(query)
    if style == "qmark":
        return to_qmark_mysql(query)[0]
    raise ValueError(f"unknown parameter style {style!r}")


# What SQLAlchemy's text() reads as a bind parameter (sqlalchemy.sql.elements.TextClause).
_SQLALCHEMY_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")


def to_sqlalchemy_text(query: str) -> str:
    """Keep `:name` placeholders for SQLAlchemy's text(); escape (`\\:`) every other colon
    that text() would take for one (inside strings and comments), and part a placeholder
    from a following `::` cast, which text() would otherwise not see as a placeholder."""
    edits: dict[int, tuple[int, str]] = {}
    for match in _TOKEN.finditer(query):
        if match.group("name"):
            cast = query.startswith(":", match.end())
            edits[match.start()] = (match.end(), match.group(0) + (" " if cast else ""))
    for match in _SQLALCHEMY_BIND.finditer(query):
        if match.start() not in edits:
            edits[match.start()] = (match.end(), "\\" + match.group(0))
    parts: list[str] = []
    position = 0
    for start in sorted(edits):
        end, replacement = edits[start]
        parts += [query[position:start], replacement]
        position = end
    parts.append(query[position:])
    return "".join(parts)


# MySQL and MariaDB: backslash escapes inside quotes, backtick identifiers, '#' comments, and
# '-- ' comments only with whitespace after the dashes; no dollar quotes or '::' casts.
_MYSQL_TOKEN = re.compile(
    r"""
    (?P<skip>
        '(?:[^'\\]|\\.|'')*'
      | "(?:[^"\\]|\\.|"")*"
      | `(?:[^`]|``)*`
      | (?:--[ \t\r\n]|\#)[^\n]*
      | /\*.*?\*/
    )
    | (?<![:\w]):(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)


def to_qmark_mysql(query: str) -> tuple[str, tuple[str, ...]]:
    """Rewrite a MySQL/MariaDB query's `:name` as `?`; returns the SQL and the names in order,
    for a qmark driver that binds by position (a literal '%' stays as it is)."""
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name:
            names.append(name)
            return "?"
        return match.group(0)

    return _MYSQL_TOKEN.sub(replace, query), tuple(names)
