"""The docs are true: every `where:` line in docs/rules.md type-checks, every `docs/design.md §N`
citation in the repository points at a section that exists, and docs/developing.md maps every
module and names only files and definitions that exist."""

from __future__ import annotations

import ast
import re

import pytest

from fraudrules.errors import SourceLocation
from fraudrules.lang.expr import parse_expr
from fraudrules.pack.checker import Checker, Scope
from fraudrules.pack.model import ExprSource
from fraudrules.pack.source import Node
from tests.helpers import REPO

WHERE = re.compile(r"^where: (.*?)(\s+#.*)?$", re.M)
EXAMPLES = [m.group(1) for m in WHERE.finditer((REPO / "docs" / "rules.md").read_text())]
# the guide's `params:` blocks, so that its examples with $name type-check against them
PARAMS = re.compile(r"^params:\n((?:  \w+: [^\n]*\n)+)", re.M)


def _guide_params() -> dict:
    import yaml

    from fraudrules.pack.loader import param_value

    out = {}
    for block in PARAMS.findall((REPO / "docs" / "rules.md").read_text()):
        for name, value in yaml.safe_load(block).items():
            out[name] = param_value(name, value, SourceLocation("docs/rules.md"))
    return out


def test_the_guide_has_examples():
    assert len(EXAMPLES) >= 25
    assert any("$" in e for e in EXAMPLES) and _guide_params(), "the guide shows params in use"


@pytest.mark.parametrize("expr", EXAMPLES)
def test_each_where_example_type_checks(expr, shipped_pack):
    pack = shipped_pack
    streams = pack.schema.streams
    aliases = {"inflow": streams["payment"], "pay": streams["payment"], "call": streams["call"]}
    problems = []
    for own in ("payment", "call"):
        checker = Checker(pack)
        src = ExprSource(expr, parse_expr(expr), Node(expr, SourceLocation("docs/rules.md", 1, 1), raw=expr))
        key = streams[own].fields[{"payment": "payer_account", "call": "caller"}[own]]  # for stream=/key=
        checker.check(src, Scope(streams[own], aliases, allow_aggregates=True, params=_guide_params(), own_key=key))
        if not checker.errors:
            return
        problems.append([str(e) for e in checker.errors])
    pytest.fail(f"{expr}: {problems}")


def test_every_function_and_aggregate_appears_in_the_guide():
    from fraudrules.lang.aggregates import AGGREGATES
    from fraudrules.lang.functions import FUNCTIONS

    text = (REPO / "docs" / "rules.md").read_text()
    mapping_only = {"concat", "string", "number", "timestamp", "parse_time", "upper"}
    missing = [f for f in sorted(set(FUNCTIONS) - mapping_only | set(AGGREGATES)) if f"{f}(" not in text]
    assert not missing, missing


# --- docs/design.md: every citation of a section points at one that exists ------------------------

DESIGN = REPO / "docs" / "design.md"
SECTION = re.compile(r"^## (\d+)\. ", re.M)
# "docs/design.md §8", "docs/design.md §4-§6", "docs/design.md §3 and §5", "docs/design.md §5, §7",
# "`docs/design.md` §3 to §6" in markdown; a comment may wrap between the file name and the section
CITATION = re.compile(r"docs/design\.md`?\s+(§\d+(?:\s*(?:-|–|to|,|and)\s*§\d+)*)")
RANGE = re.compile(r"§(\d+)\s*(?:-|–|to)\s*§(\d+)")
CITING_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".cfg", ".toml"}


def cited_sections(text: str) -> list[int]:
    """Every section number a text cites as ``docs/design.md §N`` (a range counts each number in it)."""
    out = []
    for m in CITATION.finditer(text):
        refs = m.group(1)
        numbers = [int(n) for n in re.findall(r"§(\d+)", refs)]
        for a, b in RANGE.findall(refs):
            numbers += range(int(a), int(b) + 1)
        out += numbers
    return out


def citing_files() -> list:
    files = [REPO / "README.md", REPO / "setup.cfg", REPO / "cli.py"]
    for top in ("engine", "tests", "bench", "docs", "rules", "samples"):
        files += [p for p in (REPO / top).rglob("*")
                  if p.suffix in CITING_SUFFIXES and p.is_file() and "__pycache__" not in p.parts]
    return files


def test_design_has_sections_1_to_8_in_order():
    assert [int(n) for n in SECTION.findall(DESIGN.read_text(encoding="utf-8"))] == list(range(1, 9))


def test_cited_sections_parse_ranges_and_lists():
    text = "(docs/design.md §4-§6) and docs/design.md\n  §3 and §5, docs/design.md §5, §7, `docs/design.md` §2 to §3"
    assert cited_sections(text) == [4, 6, 4, 5, 6, 3, 5, 5, 7, 2, 3, 2, 3]


def test_every_design_citation_points_at_a_section():
    sections = {int(n) for n in SECTION.findall(DESIGN.read_text(encoding="utf-8"))}
    cited = {p.relative_to(REPO).as_posix(): cited_sections(p.read_text(encoding="utf-8", errors="replace"))
             for p in citing_files()}
    cited = {path: numbers for path, numbers in cited.items() if numbers}
    assert len(cited) >= 20, "the code cites docs/design.md: has the citation form changed?"
    wrong = {path: sorted(set(numbers) - sections) for path, numbers in cited.items() if set(numbers) - sections}
    assert not wrong, f"citations of sections docs/design.md does not have: {wrong}"


# --- docs/developing.md: the map of the code names files and definitions that exist ---------------

DEVELOPING = REPO / "docs" / "developing.md"
# `engine/store/history.py`, `tests/unit/`, `.ci/run`, and `path::name` for a definition in that file:
# `engine/executors/batch.py::BatchExecutor._suppress` or a text in it, `tests/test_oracle.py::ORC-NEW-001`
PATH_REF = re.compile(r"`((?:engine|tests|bench|docs|rules|samples|\.ci)/[^`\s:]*|cli\.py|setup\.cfg|README\.md"
                      r"|ruff\.toml)(?:::([^`\s]+))?`")
QUALNAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def _defined(body: list, name: str) -> list | None:
    """The body of the class or function ``name`` defined in ``body`` ([] for a variable), else None."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return node.body
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return []
    return None


def defines(path, qualname: str) -> bool:
    """Whether the Python file ``path`` defines ``qualname`` (``f``, ``Class.method``, ``CONSTANT``)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for part in qualname.split("."):
        body = _defined(body, part)
        if body is None:
            return False
    return True


def developing_refs() -> list[tuple[str, str | None]]:
    """(path, name or None) of every `path` and `path::name` that docs/developing.md names."""
    return [(m.group(1), m.group(2)) for m in PATH_REF.finditer(DEVELOPING.read_text(encoding="utf-8"))]


def test_the_developers_guide_names_modules():
    refs = developing_refs()
    assert len({p for p, _ in refs if p.startswith("engine/") and p.endswith(".py")}) >= 60
    assert sum(1 for _, name in refs if name) >= 80


def test_every_path_in_the_developers_guide_exists():
    missing = sorted({path for path, _ in developing_refs() if not (REPO / path).exists()})
    assert not missing, f"docs/developing.md names files that do not exist: {missing}"


def test_every_definition_in_the_developers_guide_exists():
    wrong = []
    for path, name in developing_refs():
        target = REPO / path
        if name is None or not target.is_file():
            continue  # a missing file is the test above
        if QUALNAME.match(name) and target.suffix == ".py":
            ok = defines(target, name)
        else:  # an oracle rule id, a SQL macro: text that must occur in the file
            ok = name in target.read_text(encoding="utf-8")
        if not ok:
            wrong.append(f"{path}::{name}")
    assert not wrong, f"docs/developing.md names definitions that are not there: {wrong}"


def test_the_developers_guide_maps_every_module():
    named = {path for path, _ in developing_refs()}
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "engine").rglob("*.py")
                     if "__pycache__" not in p.parts and not {"typologies", "lookalikes"} & set(p.parts))
    unmapped = [m for m in modules if m not in named and not m.endswith("/__init__.py")]
    assert not unmapped, f"modules missing from the map in docs/developing.md: {unmapped}"


def test_the_path_checks_catch_a_stale_name():
    assert defines(REPO / "engine" / "executors" / "batch.py", "BatchExecutor._suppress")
    assert not defines(REPO / "engine" / "executors" / "batch.py", "BatchExecutor._no_such_step")
    assert not defines(REPO / "engine" / "executors" / "batch.py", "NoSuchExecutor")
    assert PATH_REF.findall("`engine/no/such.py::f` and `tests/reference.py`") == [
        ("engine/no/such.py", "f"), ("tests/reference.py", "")]
