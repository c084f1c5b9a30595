"""Inline rule tests: each rule's ``tests:`` cases, run through an executor.

A case lists records (each with a ``stream``) and the ids of the records at
which the rule must alert. Only that rule runs, with the pack's streams,
lists and macros, so a case documents the rule alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import FraudRulesError
from ..executors.batch import BatchExecutor
from ..io.records import records_from_dicts
from ..pack.model import Rule, RulePack, RuleTest
from ..pack.params import with_lists
from ..runtime.plan import Plan, compile_pack

# An executor takes (plan, records as dicts, region) and returns the ids of the
# records at which each rule alerted: {rule_id: [record ids in total order]}.
Executor = Callable[[Plan, list[dict], str], dict[str, list[str]]]


def batch_alert_ids(plan: Plan, records: list[dict], region: str) -> dict[str, list[str]]:
    recordset = records_from_dicts(records, plan.schema, region=region)
    if recordset.rejects:
        reasons = "; ".join(f"record at line {r.line}: {r.reason}" for r in recordset.rejects)
        raise FraudRulesError(f"test records rejected: {reasons}")
    executor = BatchExecutor(plan, recordset)
    out: dict[str, list[str]] = {}
    for rm in executor.run():
        last = rm.rule.steps[-1]
        table = executor.tables[last.stream]
        rows = rm.rows[-1][rm.emitted]
        order = table.seq[rows].argsort(kind="stable")
        out[rm.rule.id] = [str(x) for x in table.columns["id"].values[rows[order]]]
    return out


def stream_alert_ids(plan: Plan, records: list[dict], region: str) -> dict[str, list[str]]:
    from ..executors.stream import stream_alert_ids as run  # imports durable-rules only when asked for

    return run(plan, records, region)


EXECUTORS: dict[str, Executor] = {"batch": batch_alert_ids, "stream": stream_alert_ids}


@dataclass
class CaseResult:
    rule: Rule
    case: RuleTest
    executor: str
    expected: list[str]
    actual: list[str] | None
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and self.actual is not None and sorted(self.actual) == sorted(self.expected)

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.expected) - set(self.actual or []))

    @property
    def unexpected(self) -> list[str]:
        return sorted(set(self.actual or []) - set(self.expected))


@dataclass
class TestReport:
    results: list[CaseResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def disagreements(self) -> list[tuple[CaseResult, CaseResult]]:
        """Cases where two executors alerted at different records (or in another order),
        even if both happen to pass: the executors must agree exactly (docs/design.md §5)."""
        out = []
        by_case: dict[tuple[str, int], list[CaseResult]] = {}
        for r in self.results:
            by_case.setdefault((r.rule.id, id(r.case)), []).append(r)
        for group in by_case.values():
            ran = [r for r in group if r.actual is not None]
            out.extend((ran[0], other) for other in ran[1:] if other.actual != ran[0].actual)
        return out

    @property
    def ok(self) -> bool:
        return not self.failed and not self.disagreements


def run_rule_tests(pack: RulePack, rules: list[Rule] | None = None, executors: list[str] | None = None,
                   region: str = "CN", cases: list[RuleTest] | None = None) -> TestReport:
    """Run the inline cases of ``rules`` (all by default) through ``executors``
    (every registered one by default)."""
    report = TestReport()
    for rule in sorted(rules if rules is not None else pack.rules, key=lambda r: r.id):
        plan = compile_pack(pack, region, {rule.id})
        for case in cases if cases is not None else rule.tests:
            # a case may fix list contents (lists: {name: [values]}), so it does not depend on the shipped list
            case_plan = compile_pack(with_lists(pack, dict(case.lists), "test lists"), region, {rule.id}) \
                if case.lists else plan
            for name in executors or list(EXECUTORS):
                expected = list(case.expect)
                try:
                    actual = EXECUTORS[name](case_plan, [dict(r) for r in case.records], region).get(rule.id, [])
                    report.results.append(CaseResult(rule, case, name, expected, actual))
                except FraudRulesError as exc:
                    report.results.append(CaseResult(rule, case, name, expected, None, str(exc)))
    return report
