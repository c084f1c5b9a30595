"""pytest plugin: collects the inline ``tests:`` of rule files as test items.

Installed with the package (entry point ``pytest11``), so ``pytest`` in an
analyst's repository runs every rule case of every pack it finds: a YAML file
is a rule file when an ancestor folder holds the pack's ``streams.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..errors import RuleErrors


def _pack_root(path: Path) -> Path | None:
    for parent in path.parents:
        if (parent / "streams.yaml").is_file():
            return parent
    return None


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if file_path.suffix not in (".yaml", ".yml") or "lists" in file_path.parts:
        return None
    root = _pack_root(file_path)
    if root is None or file_path.parent == root and file_path.name in ("streams.yaml", "policy.yaml", "macros.yaml"):
        return None
    try:
        if "tests:" not in file_path.read_text(encoding="utf-8", errors="replace"):
            return None
    except OSError:
        return None
    return RuleFile.from_parent(parent, path=file_path, pack_root=root)


class RuleFile(pytest.File):
    def __init__(self, *, pack_root: Path, **kwargs):
        super().__init__(**kwargs)
        self.pack_root = pack_root

    def collect(self):
        from ..pack.loader import load_pack

        try:
            pack = load_pack(self.pack_root, only=[self.path])
        except RuleErrors as exc:
            yield RuleCase.from_parent(self, name="load", pack=None, rule=None, case=None, error=str(exc))
            return
        for rule in pack.rules:
            for case in rule.tests:
                yield RuleCase.from_parent(self, name=f"{rule.id}::{case.name}", pack=pack, rule=rule, case=case)


class RuleCaseFailure(Exception):
    pass


class RuleCase(pytest.Item):
    def __init__(self, *, pack, rule, case, error: str = "", **kwargs):
        super().__init__(**kwargs)
        self.pack, self.rule, self.case, self.error = pack, rule, case, error

    def runtest(self) -> None:
        from .rule_tests import run_rule_tests

        if self.error:
            raise RuleCaseFailure(self.error)
        report = run_rule_tests(self.pack, [self.rule], executors=None, cases=[self.case])
        failed = report.failed
        if failed:
            r = failed[0]
            detail = r.error or f"expected {r.expected}, actual {r.actual}"
            raise RuleCaseFailure(f"[{r.executor}] {detail}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, RuleCaseFailure):
            where = self.case.loc if self.case else self.path
            return f"{where}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, (self.case.loc.line - 1 if self.case else 0), self.name
