"""An earlier step's window aggregates in later steps and in ``explain`` (``fanin.sum(amount, 24h)``, #10).

The aggregate is evaluated at the record the chain binds to that step, over that step's stream and key
(docs/rules.md §3), on both executors, which must write the same bytes: the stream executor snapshots it
when the record becomes a candidate, as it does the record's fields. Random records are covered by
tests/packs/props/rules/step_aggregates*.yaml (tests/test_properties.py against the reference model,
tests/test_stream.py against batch); these cases pin the values an analyst reads.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.runtime.plan import compile_pack
from tests.helpers import alerts_of_both_executors, assert_resume_is_uninterrupted
from tests.test_properties import record_lists

RULE = """\
id: T-FANIN-OUT
title: Fan-in, then most of it paid on
score: 50
sequence:
  within: 24h
  steps:
    - as: fanin
      stream: payment
      key: payee_account
      where: amount >= 500
    - as: out
      stream: payment
      key: payer_account
      follows: fanin.payee_account
      where: amount >= 0.8 * fanin.sum(amount, 24h, where=amount >= 500)
explain: >-
  {fanin.distinct(payer_account, 24h, where=amount >= 500)} payers paid
  {fanin.sum(amount, 24h, where=amount >= 500)} in ({fanin.count(24h)} payments); {out.count(24h)} payment
  out of {out.amount}
"""


def pay(rid: str, hour: float, payer: str, payee: str, amount: float) -> dict:
    h, m = int(hour), round((hour - int(hour)) * 60)
    return {"stream": "payment", "id": rid, "ts": f"2026-03-01T{h:02d}:{m:02d}:00Z", "payer_account": payer,
            "payee_account": payee, "amount": amount}


FANIN = [pay(f"p{i}", i, f"A{i}", "M1", 1000) for i in range(1, 7)]  # six payers, 1,000 each, hours 1..6


def both(load_rule, records: list[dict]) -> list[dict]:
    return alerts_of_both_executors(load_rule(RULE), records)


def test_the_aggregate_is_the_earlier_steps_own(load_rule):
    # 6,000 came in: 4,800 out passes; the out step's own count is 1, fanin's distinct 6
    (alert,) = both(load_rule, FANIN + [pay("o1", 7, "M1", "X9", 4800)])
    assert alert["explain"] == "6 payers paid 6000 in (6 payments); 1 payment out of 4800"
    assert [e["id"] for e in alert["evidence"]] == ["p6", "o1"]
    cond = alert["conditions"][-1]
    assert cond["values"]["fanin.sum(amount, 1d, where=amount >= 500)"] == 6000  # as unparse writes it


def test_each_chain_reads_its_own_first_steps_value(load_rule):
    # 4,500 < 0.8 * 6,000 at the latest fan-in, but >= 0.8 * 5,000 at the one before: that chain is the evidence
    (alert,) = both(load_rule, FANIN + [pay("o1", 7, "M1", "X9", 4500)])
    assert [e["id"] for e in alert["evidence"]] == ["p5", "o1"]
    assert alert["explain"] == "5 payers paid 5000 in (5 payments); 1 payment out of 4500"


def test_the_value_is_taken_at_the_earlier_record_not_later(load_rule):
    # a seventh payment after p6 fails fanin's where (100 < 500), so p6 stays the latest fan-in; fanin.count(24h)
    # read at o1's time would count it (7): the value is p6's, taken when p6 became a candidate
    records = FANIN + [pay("p7", 6.5, "A7", "M1", 100), pay("o1", 7, "M1", "X9", 4800)]
    (alert,) = both(load_rule, records)
    assert alert["explain"] == "6 payers paid 6000 in (6 payments); 1 payment out of 4800"


@pytest.mark.parametrize("amount, expected", [(799.99, []), (800, ["o1"])])
def test_the_threshold_is_exact(load_rule, amount, expected):
    # one payer of 1,000: 0.8 * 1,000 is the bound, inclusive
    assert [a["record_id"] for a in both(load_rule, FANIN[:1] + [pay("o1", 7, "M1", "X9", amount)])] == expected


def test_the_guides_example_rule_passes_its_inline_cases_on_both_executors(tmp_path):
    """docs/rules.md §3 shows a whole rule with alias.agg and its inline tests: it loads, its cases pass on
    every executor, and its explain says what the fan-in step counted."""
    import re
    import shutil

    from fraudrules.jobs.rule_tests import EXECUTORS, run_rule_tests
    from fraudrules.pack.loader import load_pack
    from tests.helpers import REPO

    guide = (REPO / "docs" / "rules.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", guide, re.S) if b.startswith("id: EX-FANIN-OUT")]
    shutil.copy(REPO / "rules" / "streams.yaml", tmp_path / "streams.yaml")
    (tmp_path / "example.yaml").write_text(block)
    pack = load_pack(tmp_path)
    report = run_rule_tests(pack)
    assert len(report.results) == 2 * len(EXECUTORS)
    assert all(r.passed for r in report.results), [(r.case.name, r.executor, r.actual) for r in report.results]
    (rule,) = pack.rules
    plan = compile_pack(pack, "CN")
    alerts, *_ = evaluate(plan, records_from_dicts([dict(r) for r in rule.tests[0].records], pack.schema))
    assert [a["explain"] for a in alerts] == ["5 payers paid 5,000.00 into M1; 4,000.00 left"]


def test_checkpoint_signatures_of_calls_are_what_they_were_before_calls_took_an_alias():
    """A stream checkpoint matches its aggregates by signature: adding ``Call.alias`` must not change the
    signature of an unqualified call, or every checkpoint written before would be refused."""
    from fraudrules.executors.stream.aggregates import spec_signature
    from fraudrules.lang.expr import parse_expr
    from fraudrules.runtime.plan import AggregateSpec

    spec = AggregateSpec("count", "payment", "payer_account", 3600 * 10**9, None, parse_expr('lower(channel) == "x"'))
    assert spec_signature(spec) == (
        "count|payment|payer_account|3600000000000|-|Binary[op='==';left=Call[name='lower';"
        "args=(Field[name='channel';alias=None]);kwargs=()];right=Literal[value='x';kind='string']]")


def _props_plan(ids: set[str]):
    from tests.test_properties import PACK

    return compile_pack(PACK, "CN", ids)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), cut=st.floats(0, 1))
def test_a_checkpoint_keeps_candidates_step_aggregates_and_median_windows(records, cut):
    """The aggregates a candidate took at its record (fanin.sum(...)), and median's window state, survive
    state_dict / load_state: a run stopped anywhere and resumed writes the alerts of an uninterrupted one."""
    plan = _props_plan({"P-STEPAGG", "P-STEPAGG3", "P-MEDIAN"})
    assert_resume_is_uninterrupted(plan, records, cut)
