"""The examples in the docs are real: every `where:` line in docs/rules.md type-checks."""

from __future__ import annotations

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


def test_the_guide_has_examples():
    assert len(EXAMPLES) >= 25


@pytest.mark.parametrize("expr", EXAMPLES)
def test_each_where_example_type_checks(expr, shipped_pack):
    pack = shipped_pack
    streams = pack.schema.streams
    aliases = {"inflow": streams["payment"], "pay": streams["payment"], "call": streams["call"]}
    problems = []
    for own in ("payment", "call"):
        checker = Checker(pack)
        src = ExprSource(expr, parse_expr(expr), Node(expr, SourceLocation("docs/rules.md", 1, 1), raw=expr))
        checker.check(src, Scope(streams[own], aliases, allow_aggregates=True))
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
