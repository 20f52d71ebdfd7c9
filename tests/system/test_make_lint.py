"""`make lint`'s import-contract step: one summary line when every contract is kept, the whole
report (which contract, which import, where) and a failing exit when one is broken."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT, need


def contract_file(tmp_path: Path, name: str, source: str, forbidden: str) -> Path:
    """A contracts file holding one forbidden-import contract."""
    path = tmp_path / "contracts.toml"
    path.write_text(
        '[tool.importlinter]\nroot_package = "exporter"\n\n[[tool.importlinter.contracts]]\n'
        f'name = "{name}"\ntype = "forbidden"\n'
        f'source_modules = ["{source}"]\nforbidden_modules = ["{forbidden}"]\n'
    )
    return path


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
    contracts = contract_file(
        tmp_path, "The conventions never import the CLI", "exporter.conventions", "exporter.cli"
    )
    result = make_lint_imports(contracts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "lint-imports: Contracts: 1 kept, 0 broken.\n"
    assert result.stderr == ""


def test_a_broken_contract_fails_with_the_import_that_breaks_it(tmp_path: Path) -> None:
    # exporter.cli imports the spec (cli/serve.py loads it): this contract is broken
    contracts = contract_file(
        tmp_path, "The CLI never imports the spec", "exporter.cli", "exporter.spec"
    )
    result = make_lint_imports(contracts)
    assert result.returncode == 2, result.stdout + result.stderr  # make: a recipe failed
    assert "The CLI never imports the spec BROKEN" in result.stderr
    assert "exporter.cli is not allowed to import exporter.spec:" in result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stderr
    assert result.stderr.isascii()  # no logo (box-drawing characters)
