"""Who imports whom: every import-linter contract of pyproject.toml holds (run through its
command, ``lint-imports``), and no modules of parley import each other in a cycle (grimp, the
graph import-linter is built on)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> list[tuple[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [(c["id"], c["name"]) for c in config["tool"]["importlinter"]["contracts"]]


def contract_params() -> list[object]:
    return [pytest.param(c_id, id=name) for c_id, name in contracts()]


@pytest.mark.parametrize("contract_id", contract_params())
def test_the_import_contract_holds(contract_id: str) -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--contract", contract_id],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def imports_in_cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Every direct import ``(importer, imported)`` that closes a cycle: ``imported`` leads
    back to ``importer`` through imports."""
    return sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported == importer
        or graph.find_shortest_chain(importer=imported, imported=importer) is not None
    )


def test_no_modules_of_parley_import_each_other_in_a_cycle() -> None:
    assert imports_in_cycles(grimp.build_graph("parley", cache_dir=None)) == []


def test_the_cycle_check_finds_the_imports_of_a_cycle_and_no_other() -> None:
    graph = grimp.ImportGraph()
    for module in ("p", "p.a", "p.b", "p.c", "p.d"):
        graph.add_module(module)
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a")):
        graph.add_import(importer=importer, imported=imported)
    assert imports_in_cycles(graph) == [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a")]
