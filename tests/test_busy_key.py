"""The quadratic-sequence case of #12 scaled down: many inflows and outflows through one account
within `within`. Both executors join each trigger of a two-step sequence to its latest passing chain
only (engine/runtime/latest.py; batch ``_extend_latest``, stream/latest.py); the alerts, evidence
included, must equal each other's and the naive reference's, which builds every chain. The stream
executor's join work is counted (``join_work``) and must grow linearly with the key's records. No
timing here: bench/busy_key.py and docs/benchmarks.md."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.busy_key import records as pass_through_records
from fraudrules.executors.stream import StreamExecutor
from fraudrules.io.records import records_from_dicts
from fraudrules.jobs.score import evaluate
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.alerts import alert_line
from fraudrules.runtime.plan import compile_pack
from tests.helpers import REPO, make_pack
from tests.reference import reference_matches
from tests.test_stream import stream_lines

PASS = (REPO / "rules/payments/pass_through.yaml").read_text().replace("suppress: 12h\n", "")
UNLESS = PASS.replace("explain:", """  unless:
    stream: payment
    key: payer_account
    on: inflow
    where: amount < 10
explain:""")


def busy(n: int, seed: int, accounts: int = 1, hopeless: bool = True) -> list[dict]:
    """Inflows and outflows alternating on ``accounts`` accounts within 2 h: amounts vary so that the
    latest inflow often fails ``amount >= 0.9 * inflow.amount``, and some outflows go back to a
    recent payer (``payee_account != inflow.payer_account`` fails), so the walk must go further
    down; a few tiny payments by the mule cancel chains (``unless``), and a few mules pay
    themselves (a record that is an inflow and an outflow of the same key), and a few inflows have no
    payer (``!=`` fails on a null). ``hopeless``: outflows
    too small for any inflow too; else no such outflow, and inflows and outflows are told apart by
    their currency (an inflow is a trigger too, for the outflows that paid its payer back)."""
    rnd = random.Random(seed)
    out = []
    amounts = [5, 6000, 9000, 15000, 30000] if hopeless else [9000, 15000, 30000]
    for i in range(2 * n):
        ts = f"2026-03-01T10:{i * 60 // (2 * n):02d}:{(i * 3600 // (2 * n)) % 60:02d}Z"
        mule = f"M{rnd.randrange(accounts)}"
        if i % 2 == 0:
            payer = f"V{rnd.randrange(5)}" if rnd.random() < 0.98 else None
            out.append({"stream": "payment", "id": f"i{i}", "ts": ts, "payer_account": payer,
                        "payee_account": mule, "amount": rnd.choice([5000, 8000, 12000, 20000]),
                        "currency": "CNY"})
        else:
            amount = rnd.choice(amounts) if rnd.random() < 0.95 else 3
            payee = f"V{rnd.randrange(5)}" if rnd.random() < 0.3 else f"W{i}"
            out.append({"stream": "payment", "id": f"o{i}", "ts": ts, "payer_account": mule,
                        "payee_account": mule if rnd.random() < 0.03 else payee, "amount": amount,
                        "currency": "CNY" if hopeless else "HKD"})
    return out


def _plan(rule: str, tmp_path):
    return compile_pack(load_pack(make_pack(tmp_path, {"r": rule})), "CN")


def _batch(plan, records: list[dict]) -> list[str]:
    return [alert_line(a) for a in evaluate(plan, records_from_dicts(records, plan.schema))[0]]


def _agree(rule: str, records: list[dict], tmp_path) -> list[str]:
    plan = _plan(rule, tmp_path)
    batch = _batch(plan, records)
    stream, _ = stream_lines(plan, records, chunk=97)
    assert stream == batch
    stream, _ = stream_lines(plan, records, chunk=1)  # record by record: each release its own walk
    assert stream == batch
    (matches,) = reference_matches(plan, records).values()
    emitted = [ids for ids, ok in matches if ok]
    assert [tuple(e["id"] for e in json.loads(line)["evidence"]) for line in batch] == emitted
    return batch


@pytest.mark.parametrize("rule", [PASS, UNLESS], ids=["pass", "unless"])
def test_a_busy_key_gives_the_latest_chain_on_every_executor(rule, tmp_path):
    got = _agree(rule, busy(300, seed=1), tmp_path)
    assert len(got) > 100  # most outflows alert, each with one chain


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10**6), accounts=st.integers(1, 3))
def test_busy_keys_agree_with_the_reference(tmp_path_factory, n, seed, accounts):
    _agree(UNLESS, busy(n, seed, accounts), tmp_path_factory.mktemp("busy"))


# An unless record matched against the first step's key, while ``follows`` joins the trigger to
# another field of the first step: the latest first step may be cancelled and an earlier one not,
# so such a rule builds every chain (runtime/latest.py ``latest_chain_only``). Batch gave no alert
# for t here before: it took f2, which u cancels, and dropped f1.
FOLLOWS_PAYER = """id: TF-FOLLOW-001
title: Two payments by one payer, to accounts that did not pay out in between
description: x
severity: high
score: 60
status: stable
version: 1
sequence:
  within: 2h
  steps:
    - as: a
      stream: payment
      key: payee_account
      where: amount >= 5000
    - as: b
      stream: payment
      key: payer_account
      follows: a.payer_account
  unless:
    stream: payment
    key: payer_account
    on: a
    where: amount < 10
"""


def test_unless_on_another_key_than_the_join_keeps_every_chain(tmp_path):
    recs = [
        {"stream": "payment", "id": "f1", "ts": "2026-03-01T10:00:00Z", "payer_account": "X",
         "payee_account": "M1", "amount": 6000},
        {"stream": "payment", "id": "f2", "ts": "2026-03-01T10:01:00Z", "payer_account": "X",
         "payee_account": "M2", "amount": 6000},
        {"stream": "payment", "id": "u", "ts": "2026-03-01T10:02:00Z", "payer_account": "M2",
         "payee_account": "Z", "amount": 5},
        {"stream": "payment", "id": "t", "ts": "2026-03-01T10:03:00Z", "payer_account": "X",
         "payee_account": "Q", "amount": 100},
    ]
    got = _agree(FOLLOWS_PAYER, recs, tmp_path)
    assert [[e["id"] for e in json.loads(line)["evidence"]] for line in got] == [["f1", "f2"], ["f1", "t"]]


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 10**6), accounts=st.integers(1, 3))
def test_unless_on_another_key_agrees_with_the_reference(tmp_path_factory, n, seed, accounts):
    _agree(FOLLOWS_PAYER, busy(n, seed, accounts), tmp_path_factory.mktemp("busy"))


# --- the stream executor's work on a busy key (#12) ---------------------------------------------------


def _stream_work(plan, records: list[dict]) -> tuple[list[str], int, StreamExecutor]:
    lines, ex = stream_lines(plan, records, chunk=500)
    (work,) = ex.join_work().values()
    return lines, work, ex


@pytest.mark.parametrize("rule", [PASS, UNLESS], ids=["pass", "unless"])
def test_stream_join_work_is_linear_on_a_busy_key(rule, tmp_path):
    """bench/busy_key.py's case: n outflows each join every earlier inflow (n^2/2 chains). The stream
    executor looks at each trigger's latest chain only, and durable-rules holds one inflow of the
    busy account, not n; the alerts stay batch's."""
    plan = _plan(rule, tmp_path)
    works = {}
    for n in (2000, 4000):
        recs = [{"stream": "payment", **r} for r in pass_through_records(n)]
        lines, works[n], ex = _stream_work(plan, recs)
        assert lines == _batch(plan, recs)
        assert len(lines) == n  # every outflow alerts, with its latest inflow
        assert works[n] <= 2 * n  # a test of the least inflow and the latest chain per trigger; was n(n+1)/2
        # live facts: the busy account's latest inflow only; an outflow is also an inflow of its payee, but
        # no outflow of a payee joins it, so it is never asserted (StreamExecutor._send_first_steps)
        assert ex.stats["live_facts"] == ex.durable_fact_count() == 1
    assert works[4000] <= 2.2 * works[2000]


WALK = (UNLESS.replace("where: amount >= 5000", 'where: amount >= 5000 and currency == "CNY"')
        .replace("where: amount >= 0.9", 'where: currency == "HKD" and amount >= 1000 and amount >= 0.9'))


@pytest.mark.parametrize("rule, hopeless", [(WALK, False), (PASS, True), (UNLESS, True)],
                         ids=["walk", "hopeless", "hopeless-unless"])
def test_stream_join_work_is_linear_when_the_latest_fails(rule, hopeless, tmp_path):
    """The latest inflow often fails the cross conditions, so triggers walk down: still about a
    constant number of chains per trigger, and the alerts those of batch. ``hopeless``: with
    triggers that no live inflow passes too (tiny outflows; inflows as triggers of the outflows that
    paid their payer back, which ``payee_account != inflow.payer_account`` fails for all): the least
    live inflow, and the count of live payers other than the trigger's payee, tell so without a walk
    (stream/latest.py ``Hints``). Without them those triggers made it quadratic: 578,424 chains for
    n = 2,000 and 2,309,575 for 4,000."""
    assert WALK.count("currency ==") == 2
    plan = _plan(rule, tmp_path)
    works = {}
    for n in (2000, 4000):
        recs = busy(n, seed=11, hopeless=hopeless)
        lines, works[n], _ = _stream_work(plan, recs)
        assert lines == _batch(plan, recs)
        assert len(lines) > n // 2
        assert works[n] <= 8 * n
    assert works[4000] <= 2.5 * works[2000]


# ``T <= g(first)``: the greatest live inflow is the one to test
AT_MOST = UNLESS.replace("where: amount >= 0.9 * inflow.amount", "where: amount <= 1.5 * inflow.amount")


def test_the_hopeless_tests_of_a_rule(tmp_path):
    """TF-PASS-001's cross conditions: the least live inflow amount, and the live inflows' payers."""
    from fraudrules.runtime.latest import Differs, hopeless_tests

    for rule, least in ((PASS, True), (AT_MOST, False)):
        (rp,) = (plan := _plan(rule, tmp_path / str(least))).rules
        extremes, differs = hopeless_tests(rp, plan.schema)
        assert [(e.field, e.least) for e in extremes] == [("amount", least)]
        assert differs == [Differs("payee_account", "payer_account")]


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 50), seed=st.integers(0, 10**6), accounts=st.integers(1, 3))
def test_the_greatest_first_step_agrees_with_the_reference(tmp_path_factory, n, seed, accounts):
    assert AT_MOST != UNLESS
    _agree(AT_MOST, busy(n, seed, accounts), tmp_path_factory.mktemp("busy"))


def test_checkpoint_inside_a_busy_key(tmp_path):
    """A checkpoint taken while a busy key has many live inflows rebuilds its run and durable-rules'
    one latest fact: the alerts after the restore are those of an uninterrupted run."""
    plan = _plan(UNLESS, tmp_path)
    recs = busy(400, seed=5, accounts=2)
    want, _ = stream_lines(plan, recs, chunk=97)
    ex = StreamExecutor(plan)
    out = []
    cut = len(recs) // 2 + 7
    for i in range(0, cut, 97):
        out.extend(ex.feed_many(recs[i: min(i + 97, cut)]))
    state = json.loads(json.dumps(ex.state_dict(), allow_nan=False))
    assert sum(len(r["cands"]) for r in state["rule_state"]) > 100
    ex2 = StreamExecutor(plan, shards=5)
    ex2.load_state(state)
    # held first steps go to durable-rules when a step-1 record joins them: a restore asserts none yet
    assert ex2.stats["live_facts"] == ex2.durable_fact_count() <= ex.stats["live_facts"]
    for i in range(cut, len(recs), 97):
        out.extend(ex2.feed_many(recs[i: i + 97]))
    out.extend(ex2.flush())
    assert [alert_line(a) for a in out] == want


# AT_MOST with both sides negated: ``-1.5 * inflow.amount`` decreases as the inflow's amount grows, so neither the
# least nor the greatest live inflow tells that none passes (runtime/latest.py ``_first_field``: k * field, k > 0)
NEGATED = AT_MOST.replace("where: amount <= 1.5 * inflow.amount", "where: -1 * amount >= -1.5 * inflow.amount")


def test_a_bound_that_falls_as_the_first_step_grows_has_no_hopeless_test(tmp_path):
    from fraudrules.runtime.latest import hopeless_tests

    assert NEGATED != AT_MOST
    (rp,) = (plan := _plan(NEGATED, tmp_path / "rule")).rules
    assert hopeless_tests(rp, plan.schema)[0] == []
    records = busy(200, seed=3, accounts=2)
    negated = _agree(NEGATED, records, tmp_path / "negated")
    at_most = _agree(AT_MOST, records, tmp_path / "at_most")
    assert [json.loads(line)["evidence"] for line in negated] == [json.loads(line)["evidence"] for line in at_most]
    assert len(negated) > 50
