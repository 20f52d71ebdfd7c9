"""Mutation testing of the modules that turn rows into numbers and numbers into rules.

mutmut (2.x, from the dev extra) writes the mutants: every operator, number, string, keyword
and argument mutmut knows in each listed module, one at a time. Each mutant is run against the
module's fast unit tests in a forked child of a process that has already imported pytest and
the third-party libraries (not `exporter`), so a mutant costs its tests, not an interpreter
start. Mutants are written into private copies of the tree (one per worker), never into the
working tree. A mutant is killed when its tests fail or run past the time limit.

    python tools/mutation.py                      # every module, table, one-line score
    python tools/mutation.py -m totals -j 2 -v    # one module, survivors listed with lines
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation-equivalent.txt"

# module -> the unit test files that exercise it (the fast tier, no processes or servers)
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "series": (
        "exporter/collection/series.py",
        (
            "test_series.py",
            "test_series_results.py",
            "test_totals_rows.py",
            "test_exposition_reference.py",
        ),
    ),
    "totals": (
        "exporter/collection/totals.py",
        ("test_totals_rows.py", "test_series.py", "test_created.py", "test_cursor_values.py"),
    ),
    "exposition": (
        "exporter/serving/exposition.py",
        ("test_exposition_reference.py", "test_series.py"),
    ),
    "publication": (
        "exporter/serving/publication.py",
        ("test_exposition_reference.py", "test_series.py"),
    ),
    "params": ("exporter/spec/params.py", ("test_params_rewriting.py", "test_mysql_unit.py")),
    "binding": ("exporter/collection/binding.py", ("test_params_rewriting.py",)),
    "thresholds": (
        "exporter/generation/rules/thresholds.py",
        ("test_threshold_rules.py", "test_rules.py", "test_many_databases_generation.py"),
    ),
    "ratios": (
        "exporter/generation/rules/ratios.py",
        ("test_ratio_rules.py", "test_threshold_rules.py", "test_rules.py"),
    ),
}


@dataclass
class Mutant:
    module: str
    line_number: int  # 1-based
    original: str
    mutated: str
    source: str  # the whole mutated file


@dataclass
class Score:
    killed: int = 0
    timeouts: int = 0
    equivalent: int = 0
    survivors: list[Mutant] = field(default_factory=list)

    def total(self) -> int:
        """Mutants that could be killed: the listed equivalent ones are left out."""
        return self.killed + len(self.survivors)


def mutants(module: str, path: Path) -> list[Mutant]:
    from mutmut import ALL, Context, list_mutations, mutate

    source = path.read_text()
    ids = list_mutations(Context(source=source, mutation_id=ALL, filename=str(path)))
    found = []
    original_lines = source.split("\n")
    for mutation_id in ids:
        context = Context(source=source, mutation_id=mutation_id, filename=str(path))
        mutated, count = mutate(context)
        if count != 1:
            raise SystemExit(f"{path}: mutant {mutation_id} applied {count} times")
        mutated_lines = mutated.split("\n")
        line = mutation_id.line_number
        changed = mutated_lines[line] if len(mutated_lines) == len(original_lines) else "(lines)"
        found.append(
            Mutant(module, line + 1, original_lines[line].strip(), changed.strip(), mutated)
        )
    return found


def equivalent_mutants() -> set[tuple[str, int, str]]:
    """(module, line, mutated line) of the mutants listed as not changing behaviour."""
    listed = set()
    if EQUIVALENT.exists():
        for raw in EQUIVALENT.read_text().splitlines():
            if not raw.strip() or raw.startswith("#"):
                continue
            where, mutated, _why = (part.strip() for part in raw.split(" | ", 2))
            module, _, line = where.partition(":")
            listed.add((module, int(line), mutated))
    return listed


def copy_tree(root: Path, target: Path) -> None:
    """The checkout without its virtualenv, git data and caches (tests read rules/, config/)."""
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*_cache", ".hypothesis", "*.egg-info", "*.pyc"
    )
    shutil.copytree(root, target, ignore=ignore)


def run_tests(tree: Path, tests: tuple[str, ...]) -> int:
    """Fork a child that runs `tests` on `tree`'s sources; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.chdir(tree)
        sys.path.insert(0, str(tree))
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        import pytest

        args = ["-x", "-q", "-p", "no:cacheprovider", "-m", "not slow"]
        code = pytest.main([*args, *(f"tests/unit/{name}" for name in tests)])
        os._exit(int(code))
    except BaseException:
        os._exit(99)


def wait(pid: int, deadline: float) -> int | None:
    """The child's exit code, or None when it ran past `deadline` (then it is killed)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.02)


def score_module(name: str, workers: list[Path], limit: float) -> Score:
    relative, listed_tests = MODULES[name]
    # an older tree (--tree) may lack some of the files: its mutants meet the ones it has
    tests = tuple(t for t in listed_tests if (workers[0] / "tests" / "unit" / t).exists())
    found = mutants(name, workers[0] / relative)
    original = (workers[0] / relative).read_text()
    listed = equivalent_mutants()
    score = Score()
    if not tests:
        score.survivors = found
        return score
    pending = list(found)
    running: dict[int, tuple[Path, Mutant, float]] = {}
    free = list(workers)
    while pending or running:
        while pending and free:
            mutant = pending.pop(0)
            tree = free.pop()
            (tree / relative).write_text(mutant.source)
            pid = run_tests(tree, tests)
            running[pid] = (tree, mutant, time.monotonic() + limit)
        for pid, (tree, mutant, deadline) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() <= deadline:
                continue
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                score.killed += 1
                score.timeouts += 1
            elif os.waitstatus_to_exitcode(status) != 0:
                score.killed += 1
            elif (name, mutant.line_number, mutant.mutated) in listed:
                score.equivalent += 1
            else:
                score.survivors.append(mutant)
            (tree / relative).write_text(original)
            del running[pid]
            done_count = score.killed + score.equivalent + len(score.survivors)
            print(f"{name}: {done_count}/{len(found)}", file=sys.stderr, flush=True)
            free.append(tree)
        time.sleep(0.02)
    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--module", action="append", choices=sorted(MODULES))
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true", help="list surviving mutants")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to test (a before)")
    args = parser.parse_args()
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True
    # imported once here, inherited by every forked test run
    import hypothesis  # noqa: F401
    import prometheus_client  # noqa: F401
    import pydantic  # noqa: F401
    import pytest  # noqa: F401
    import yaml  # noqa: F401

    names = args.module or list(MODULES)
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        workers = [Path(scratch) / f"w{i}" for i in range(max(1, args.jobs))]
        for tree in workers:
            copy_tree(args.tree, tree)
        started = time.monotonic()
        everything = {t for n in names for t in MODULES[n][1]}
        present = tuple(sorted(t for t in everything if (workers[0] / "tests/unit" / t).exists()))
        pid = run_tests(workers[0], present)
        if wait(pid, started + 600) != 0:
            print("the unmutated tests fail: fix them first", file=sys.stderr)
            return 2
        limit = 10 + 5 * (time.monotonic() - started)
        print(f"{'module':<12} {'killed':>7} {'total':>6} {'equiv':>6} {'score':>7}")
        killed = total = 0
        survivors: list[Mutant] = []
        for name in names:
            score = score_module(name, workers, limit)
            killed += score.killed
            total += score.total()
            survivors += score.survivors
            percent = 100 * score.killed / score.total() if score.total() else 100.0
            print(
                f"{name:<12} {score.killed:>7} {score.total():>6} {score.equivalent:>6} "
                f"{percent:>6.1f}%",
                flush=True,
            )
    if args.verbose:
        for mutant in survivors:
            print(f"survived {mutant.module}:{mutant.line_number}: {mutant.original}")
            print(f"      as {mutant.mutated}")
    print(f"mutation: {killed}/{total} killed ({100 * killed / total if total else 100:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
