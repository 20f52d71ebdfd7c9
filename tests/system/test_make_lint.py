"""`make lint`'s import-contract step: one summary line when every contract is kept, the whole
report (which contract, which import, where) and a failing exit when one is broken."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT, need

# exporter.cli imports the spec (cli/serve.py loads it): a contract forbidding that is broken
BROKEN = """
[tool.importlinter]
root_package = "exporter"

[[tool.importlinter.contracts]]
name = "The CLI never imports the spec"
type = "forbidden"
source_modules = ["exporter.cli"]
forbidden_modules = ["exporter.spec"]
"""
KEPT = """
[tool.importlinter]
root_package = "exporter"

[[tool.importlinter.contracts]]
name = "The conventions never import the CLI"
type = "forbidden"
source_modules = ["exporter.conventions"]
forbidden_modules = ["exporter.cli"]
"""


def make_lint_imports(contracts: Path) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    need(make is not None, "make is not installed (Debian package make)")
    assert make is not None
    # an outer `make test` passes its flags down through MAKEFLAGS; this run has its own
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        [
            make,
            "--no-print-directory",
            "-C",
            str(ROOT),
            "lint-imports",
            f"IMPORT_CONTRACTS={contracts}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_kept_contracts_print_one_summary_line(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(KEPT)
    result = make_lint_imports(contracts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "lint-imports: Contracts: 1 kept, 0 broken.\n"
    assert result.stderr == ""


def test_a_broken_contract_fails_with_the_import_that_breaks_it(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(BROKEN)
    result = make_lint_imports(contracts)
    assert result.returncode != 0
    assert "The CLI never imports the spec BROKEN" in result.stderr
    assert "exporter.cli is not allowed to import exporter.spec:" in result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stderr
    assert result.stderr.isascii()  # no logo (box-drawing characters)
