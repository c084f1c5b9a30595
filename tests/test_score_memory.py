"""What ``score`` lets go of to keep its peak memory down computes nothing else (issue #9).

- One process evaluating rule after rule drops the aggregates no later rule reads
  (BatchExecutor.keep_only_for): the results equal those of an executor that keeps them all,
  and nothing a later rule reads is computed twice.
- A run whose scored records go to the writer drops the records before writing them: the files
  equal those written from a result held whole in memory.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from fraudrules.executors.batch import AggregateStore, BatchExecutor
from fraudrules.io.records import parse_inputs, read_time_chunks
from fraudrules.jobs.score import _rule_result, score, score_job, write_outputs
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack
from tests.helpers import REPO, RULES

SAMPLES = REPO / "samples"
OUTPUTS = ("alerts.jsonl", "scored.jsonl", "rejects.csv", "summary.json")


@pytest.fixture(scope="module")
def plan_and_records():
    pack = load_pack(RULES)
    plan = compile_pack(pack)
    records = read_time_chunks(parse_inputs([str(SAMPLES)], pack.schema), pack.schema).whole()
    return plan, records


def _results(plan, records, keep) -> tuple[list, Counter]:
    computed: Counter = Counter()
    original = AggregateStore._compute

    def counted(self, spec):
        computed[spec] += 1
        return original(self, spec)

    AggregateStore._compute = counted  # type: ignore[method-assign]
    try:
        executor = BatchExecutor(plan, records)
        out = []
        for i, rp in enumerate(plan.rules):
            out.append(_rule_result(executor, rp))
            if keep is not None:
                executor.keep_only_for(keep(i))
    finally:
        AggregateStore._compute = original  # type: ignore[method-assign]
    return out, computed


def _same(a, b) -> None:
    assert len(a) == len(b)
    for (n1, s1, rows1, alerts1), (n2, s2, rows2, alerts2) in zip(a, b):
        assert (n1, s1) == (n2, s2)
        assert np.array_equal(rows1, rows2)
        assert alerts1 == alerts2


def test_dropping_aggregates_gives_the_same_results(plan_and_records):
    plan, records = plan_and_records
    kept, computed = _results(plan, records, None)
    assert sum(n for n, *_ in kept) > 0  # the samples match something: the comparison is not empty
    # every aggregate dropped after each rule: what a later rule reads is computed again, the same
    dropped, again = _results(plan, records, lambda i: [])
    _same(kept, dropped)
    assert sum(again.values()) > sum(computed.values())  # the drop did drop something
    # what score does: keep what the later rules read, so nothing is computed twice
    later, once = _results(plan, records, lambda i: plan.rules[i + 1:])
    _same(kept, later)
    assert once == computed


def test_outputs_of_a_run_that_drops_its_records_equal_those_held_whole(tmp_path):
    pack = load_pack(RULES)
    specs = parse_inputs([str(SAMPLES)], pack.schema)
    result, _ = score_job(RULES, specs, tmp_path / "streamed", pack=pack)
    assert result.records.tables == {} and result.scored is None
    whole = score(RULES, specs, pack=pack)
    assert whole.records.tables  # without a writer the records stay with the result
    write_outputs(whole, tmp_path / "whole")
    assert [s.read for s in result.records.inputs] == [s.read for s in whole.records.inputs]
    assert result.records.rejects == whole.records.rejects
    for name in OUTPUTS:
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name



def test_indexes_are_built_once_dropped_after_their_last_rule_and_prepared_when_shared(plan_and_records):
    plan, records = plan_and_records
    asked: dict[str, set] = {}  # the (stream, key) groups each rule reads, seen as it runs alone
    original_group = AggregateStore.group
    for rp in plan.rules:
        seen: set = set()

        def group(self, stream, key, _seen=seen):
            _seen.add((stream, key))
            return original_group(self, stream, key)

        AggregateStore.group = group  # type: ignore[method-assign]
        try:
            _rule_result(BatchExecutor(plan, records), rp)
        finally:
            AggregateStore.group = original_group  # type: ignore[method-assign]
        asked[rp.id] = seen
    counts = Counter(gk for seen in asked.values() for gk in seen)
    assert any(n == 1 for n in counts.values()) and any(n > 1 for n in counts.values())

    # prepare(shared_only=True) builds the groups two rules or more read, and only those
    executor = BatchExecutor(plan, records)
    executor.prepare(2, shared_only=True)
    assert set(executor.store._groups) == {gk for gk, n in counts.items() if n > 1}

    # rule after rule, keeping what the later rules read: no group is built twice, and none outlives its last rule
    built: Counter = Counter()
    original_build = AggregateStore.group

    def counting(self, stream, key):
        if (stream, key) not in self._groups:
            built[(stream, key)] += 1
        return original_build(self, stream, key)

    AggregateStore.group = counting  # type: ignore[method-assign]
    try:
        executor = BatchExecutor(plan, records)
        for i, rp in enumerate(plan.rules):
            _rule_result(executor, rp)
            executor.keep_only_for(plan.rules[i + 1:])
            later = set().union(*(asked[r.id] for r in plan.rules[i + 1:]))
            assert set(executor.store._groups) <= later, rp.id
    finally:
        AggregateStore.group = original_build  # type: ignore[method-assign]
    assert set(built) == set(counts) and set(built.values()) == {1}
    assert not executor.store._groups and not executor.store._starts and not executor.store._foreign_index
