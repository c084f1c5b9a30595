"""The optional rules of samples/optional_rules/ (measured, not shipped) stay valid: each loads into
the shipped pack without a lint problem, and its inline tests pass on both executors, which agree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fraudrules.jobs.rule_tests import run_rule_tests
from fraudrules.pack.loader import load_pack

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = sorted((REPO / "samples" / "optional_rules").glob("*.yaml"))


@pytest.fixture(scope="module")
def pack_with_optional(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack") / "rules"
    shutil.copytree(REPO / "rules", root)
    (root / "optional").mkdir()
    for path in OPTIONAL:
        shutil.copy(path, root / "optional" / path.name)
    return load_pack(root)


def test_there_are_optional_rules_and_none_is_shipped():
    shipped = {r.id for r in load_pack(REPO / "rules").rules}
    optional = [p.read_text(encoding="utf-8").split("\n", 1)[0].removeprefix("id: ") for p in OPTIONAL]
    assert optional and not shipped & set(optional)


@pytest.mark.parametrize("path", OPTIONAL, ids=lambda p: p.name)
def test_optional_rule_tests_pass_on_both_executors(pack_with_optional, path):
    rules = [r for r in pack_with_optional.rules if Path(r.path).name == path.name]
    assert rules, f"{path.name}: not loaded"
    report = run_rule_tests(pack_with_optional, rules)
    assert len({r.executor for r in report.results}) >= 2  # batch and stream
    assert len(report.results) >= 2 * 5  # every case on each executor
    assert report.ok, [(r.case.name, r.executor, r.expected, r.actual, r.error) for r in report.failed]
