"""Spec files: read YAML with line numbers, substitute ${VAR}, merge files, validate."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from exporter.spec.checks import spec_errors
from exporter.spec.model import Loc, Spec

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000  # after alias expansion: refuses YAML bombs before pydantic walks them
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_LIST_KEYS = ("kpis", "ratios", "alerts", "records", "dashboards")
_MAP_KEYS = ("exporter", "databases")
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the spec, located in its file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class SpecError(Exception):
    """The spec is invalid; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the files it came from and a digest of their text."""

    spec: Spec
    files: tuple[Path, ...]
    digest: str
    # (field location, message) -> a Problem at the file and line that field came from
    locate: Callable[[Loc, str], Problem] = field(
        default=lambda loc, message: Problem("<spec>", None, _field(loc), message),
        compare=False,
        repr=False,
    )


@dataclass
class _Document:
    path: str
    data: Any
    lines: dict[Loc, int]


def spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into their *.yaml / *.yml files, sorted by name."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def load_spec(paths: Iterable[str | Path], env: Mapping[str, str] | None = None) -> LoadedSpec:
    """Load, substitute, merge and validate spec files; raise SpecError listing every problem."""
    environ = os.environ if env is None else env
    files = spec_files(paths)
    if not files:
        raise SpecError([Problem("<none>", None, "", "no spec file given")])
    problems: list[Problem] = []
    documents: list[_Document] = []
    digest = hashlib.sha256()
    for path in files:
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            problems.append(Problem(str(path), None, "", f"cannot read: {exc.strerror}"))
            continue
        if len(raw) > MAX_FILE_BYTES:
            problems.append(Problem(str(path), None, "", "file is larger than 4 MiB"))
            continue
        digest.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(str(path), None, "", f"not UTF-8 (byte {exc.start})"))
            continue
        document = _parse(str(path), text, environ, problems)
        if document is not None:
            documents.append(document)
    if problems:
        raise SpecError(problems)
    merged, origin = _merge(documents, problems)
    if problems:
        raise SpecError(problems)
    try:
        spec = Spec.model_validate(merged)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            loc = tuple(error["loc"])
            problems.append(_locate(loc, _message(error), origin, documents, merged))
        raise SpecError(_unique(problems)) from None
    for loc, message in spec_errors(spec):
        problems.append(_locate(loc, message, origin, documents, merged))
    if problems:
        raise SpecError(problems)
    return LoadedSpec(
        spec=spec,
        files=tuple(files),
        digest=digest.hexdigest(),
        locate=lambda loc, message: _locate(loc, message, origin, documents, merged),
    )


def _parse(
    path: str, text: str, env: Mapping[str, str], problems: list[Problem]
) -> _Document | None:
    try:
        return _parse_document(path, text, env, problems)
    except RecursionError:  # the YAML parser and our walk recurse once per nesting level
        problems.append(Problem(path, None, "", "the document nests too deeply"))
        return None
    except ValueError as exc:  # a scalar PyYAML cannot build, e.g. an int of 5000 digits
        problems.append(Problem(path, None, "", f"invalid value: {exc}"))
        return None


def _parse_document(
    path: str, text: str, env: Mapping[str, str], problems: list[Problem]
) -> _Document | None:
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        problems.append(Problem(path, _mark_line(exc), "", _yaml_message(exc)))
        return None
    if node is None:
        return _Document(path, {}, {})
    if _expanded_size(node, {}) > MAX_NODES:
        problems.append(
            Problem(path, None, "", f"document expands to more than {MAX_NODES} nodes (aliases)")
        )
        return None
    lines: dict[Loc, int] = {}
    before = len(problems)
    try:
        data = _build(node, (), lines, path, env, problems, loader)
    except yaml.YAMLError as exc:
        problems.append(Problem(path, _mark_line(exc), "", _yaml_message(exc)))
        return None
    if len(problems) > before:
        return None
    if not isinstance(data, dict):
        problems.append(Problem(path, 1, "", "the top level must be a mapping"))
        return None
    return _Document(path, data, lines)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_NODES + 1  # a recursive alias counts as too large
    size = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo) + _expanded_size(v, memo)
            if size > MAX_NODES:
                break
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            size += _expanded_size(item, memo)
            if size > MAX_NODES:
                break
    memo[key] = size
    return size


def _build(
    node: yaml.Node,
    loc: Loc,
    lines: dict[Loc, int],
    path: str,
    env: Mapping[str, str],
    problems: list[Problem],
    loader: yaml.SafeLoader,
) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"could not determine a constructor for the tag {node.tag!r}",
            node.start_mark,
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a string", key_node.start_mark
                )
            if key in result:
                problems.append(
                    Problem(
                        path, key_node.start_mark.line + 1, _field(loc), f"duplicate key {key!r}"
                    )
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*loc, key), lines, path, env, problems, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*loc, index), lines, path, env, problems, loader)
            for index, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str) and "$" in value:
        return _substitute(value, env, path, node.start_mark.line + 1, loc, problems)
    return value


def _substitute(
    value: str, env: Mapping[str, str], path: str, line: int, loc: Loc, problems: list[Problem]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found is None or (found == "" and default is not None):
            if default is not None:
                return default
            problems.append(
                Problem(path, line, _field(loc), f"environment variable {name} is not set")
            )
            return ""
        return found

    return _VAR.sub(replace, value)


def _merge(documents: Sequence[_Document], problems: list[Problem]) -> tuple[dict, dict]:
    """Merge documents; `origin` maps a merged path prefix to (document, its own prefix)."""
    merged: dict[str, Any] = {}
    origin: dict[Loc, tuple[_Document, Loc]] = {}
    for doc in documents:
        for key, value in doc.data.items():
            line = doc.lines.get((key,))
            if key in _LIST_KEYS:
                if not isinstance(value, list):
                    problems.append(Problem(doc.path, line, str(key), "must be a list"))
                    continue
                target = merged.setdefault(key, [])
                for index, item in enumerate(value):
                    origin[(key, len(target))] = (doc, (key, index))
                    target.append(item)
            elif key in _MAP_KEYS:
                if not isinstance(value, dict):
                    problems.append(Problem(doc.path, line, str(key), "must be a mapping"))
                    continue
                target = merged.setdefault(key, {})
                for name, item in value.items():
                    if name in target:
                        what = "database" if key == "databases" else "setting"
                        problems.append(
                            Problem(
                                doc.path,
                                doc.lines.get((key, name)),
                                f"{key}.{name}",
                                f"{what} {name!r} is already defined in another file",
                            )
                        )
                        continue
                    origin[(key, name)] = (doc, (key, name))
                    target[name] = item
            else:
                allowed = ", ".join((*_MAP_KEYS, *_LIST_KEYS))
                problems.append(
                    Problem(doc.path, line, str(key), f"unknown top-level key (allowed: {allowed})")
                )
    # duplicate KPI names across files are caught by reference_errors, located per file
    return merged, origin


def _locate(
    loc: Loc,
    message: str,
    origin: dict[Loc, tuple[_Document, Loc]],
    documents: Sequence[_Document],
    merged: dict,
) -> Problem:
    doc: _Document | None = None
    own = loc
    if len(loc) >= 2 and loc[:2] in origin:
        doc, prefix = origin[loc[:2]]
        own = prefix + loc[2:]
    elif documents:
        doc = documents[0]
    if doc is None:
        return Problem("<spec>", None, _field(loc), message)
    line = None
    for cut in range(len(own), 0, -1):
        if own[:cut] in doc.lines:
            line = doc.lines[own[:cut]]
            break
    if loc and loc[0] == "kpis" and len(loc) >= 2 and isinstance(loc[1], int):
        items = merged.get("kpis", [])
        item = items[loc[1]] if loc[1] < len(items) else None
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            message = f"{message} (KPI {item['name']!r})"
    return Problem(doc.path, line, _field(own), message)


def _field(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    result = []
    for problem in problems:
        if str(problem) not in seen:
            seen.add(str(problem))
            result.append(problem)
    return result


def _mark_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _yaml_message(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"invalid YAML: {context + ', ' if context else ''}{problem}"
    return f"invalid YAML: {type(exc).__name__}"
