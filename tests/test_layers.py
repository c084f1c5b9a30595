"""The package's import structure: stages import downward only, and no module imports itself back.

The layers are declared once, as an import-linter contract in setup.cfg; `.ci/run` runs
`lint-imports`. These tests run the same contract here and show that it catches an upward import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(package_parent: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if package_parent is not None:  # a copy of the package shadows the installed one
        env["PYTHONPATH"] = str(package_parent)
    # the contract is found in setup.cfg in cwd, as CI runs it (a path argument: import-linter 2.16 and later only)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_layers_contract_is_kept() -> None:
    proc = _lint_imports()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "fraudrules"
    shutil.copytree(REPO / "engine", copy, ignore=shutil.ignore_patterns("__pycache__"))
    expr = copy / "lang" / "expr.py"
    # the syntax tree must not know about jobs: this is exactly the mistake the contract exists for
    expr.write_text(expr.read_text() + "\n\ndef _upward():\n    from ..jobs import score  # noqa: F401\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout
    assert "fraudrules.lang.expr -> fraudrules.jobs.score" in proc.stdout


def _cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Pairs of modules that import each other, directly or through others (lazy imports included)."""
    found = set()
    for a in graph.modules:
        for b in graph.find_modules_directly_imported_by(a):
            if graph.chain_exists(importer=b, imported=a):
                found.add((min(a, b), max(a, b)))
    return sorted(found)


def test_no_import_cycles() -> None:
    # imports under `if TYPE_CHECKING:` never run, so they cannot form a cycle at import time
    graph = grimp.build_graph("fraudrules", cache_dir=None, exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b  # noqa: F401\n")
    (pkg / "b.py").write_text("def f():\n    from . import a  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic", cache_dir=None)
    assert _cycles(graph) == [("cyclic.a", "cyclic.b")]
