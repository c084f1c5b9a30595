"""The stream executor never lets durable-rules refuse a join on its last operand.

durable-rules 2.0.28 (events.c, ``reduceExpressionSequence``) skips to the end of an ``$and`` starting one past
the operand after a false one. When the false operand is the last, it reads past the sequence's end: measured,
a segfault in about two runs of three when the last step's join refuses so. The executor orders each step's
operands (``RuleRuntime.durable_rule``) so that the last one is true by its discipline; these tests watch every
message it sends, over random records, and evaluate that operand against every live fact it could meet:

- forward: a fact or trigger of step j against the live facts of the step the operand reads;
- backward: a new fact of step m against the live facts of later steps whose last operand reads ``a{m}``.

They check more pairs than durable-rules joins (every live fact of the rule in the sid, whatever its key), so
they fail on an order that could refuse, not only on one that did. A trigger taken before the record's earlier
step (``steps_on``) and exact expiry are what keep them true."""

from __future__ import annotations

import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fraudrules.executors.stream.executor as executor_module
from fraudrules.executors.stream import StreamExecutor
from fraudrules.executors.stream.durable import SyncHost
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack
from tests.helpers import in_event_time_order, make_pack
from tests.test_properties import record_lists
from tests.test_stream import CYCLE_RULES, _payments

PACKS = pathlib.Path(__file__).parent / "packs"


def _operand_holds(operand: dict, right: dict, left: dict) -> bool:
    """One join operand as durable-rules reads it: ``right`` is the message joined, ``left`` the fact of the
    alias it names. Only the forms durable_rule writes; another one fails the test, which must learn it."""
    (op, body), = operand.items()
    (field, ref), = body.items()
    if op == "$gt":
        (_alias, lfield), = ref.items()
        return right[field] > left[lfield]
    if op == "$lte":
        add = ref["$add"]
        (_alias, lfield), = add["$l"].items()
        return right[field] <= left[lfield] + add["$r"]
    raise AssertionError(f"an operand this test cannot evaluate: {operand}")


def _alias_of(operand: dict) -> int:
    (body,) = operand.values()
    (ref,) = body.values()
    alias = next(iter(ref["$add"]["$l"])) if "$add" in ref else next(iter(ref))
    return int(alias[1:])


class Discipline:
    """The last operand of every step of every sequence rule, and the refusals seen."""

    def __init__(self, ex: StreamExecutor):
        self.last: dict[int, dict[int, dict]] = {}
        for rule in ex._seq_rules:
            conds = rule.durable_rule()["all"]
            self.last[rule.index] = {j: conds[j][f"a{j}"]["$and"][-1] for j in range(1, rule.k)}
        self.k = {rule.index: rule.k for rule in ex._seq_rules}
        self.live: dict[str, dict] = {}
        self.refused: list[tuple] = []
        self.asserts = 0

    def check(self, msg: dict) -> None:
        self.asserts += 1
        r, j = msg["r"], msg["st"]
        others = [m for m in self.live.values() if m["r"] == r and m["sid"] == msg["sid"]]
        # a trigger is retracted before anything else is sent: no partial chain ever meets one
        self.refused.extend(("live trigger", m["id"]) for m in others if m["st"] == self.k[r] - 1)
        if j:
            operand = self.last[r][j]
            src = _alias_of(operand)
            self.refused.extend(("forward", operand, m["q"], msg["q"]) for m in others
                                if m["st"] == src and not _operand_holds(operand, msg, m))
        for later, operand in self.last[r].items():
            if later > j and _alias_of(operand) == j:
                self.refused.extend(("backward", operand, msg["q"], m["q"]) for m in others
                                    if m["st"] == later and not _operand_holds(operand, m, msg))


def _run_watched(plan, records: list[dict], chunk: int) -> Discipline:
    seen: list[Discipline] = []

    class Watching(SyncHost):
        def assert_fact(self, ruleset_name, fact, complete=None):
            seen[0].check(fact)
            seen[0].live[fact["id"]] = dict(fact)
            return super().assert_fact(ruleset_name, fact, complete)

        def retract_fact(self, ruleset_name, fact, complete=None):
            seen[0].live.pop(fact["id"], None)
            return super().retract_fact(ruleset_name, fact, complete)

    ordered = in_event_time_order(records)
    original = executor_module.SyncHost
    executor_module.SyncHost = Watching
    try:
        ex = StreamExecutor(plan, lateness=0.0)
        seen.append(Discipline(ex))
        for i in range(0, len(ordered), chunk):
            ex.feed_many([dict(r) for r in ordered[i: i + chunk]])
        ex.flush()
    finally:
        executor_module.SyncHost = original
    return seen[0]


PLANS = {name: compile_pack(load_pack(PACKS / name), "CN") for name in ("props", "runs")}


@pytest.mark.parametrize("pack", sorted(PLANS))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=record_lists(), chunk=st.sampled_from([1, 7, 1000]))
def test_no_join_is_refused_on_its_last_operand(pack, records, chunk):
    """Every rule of the property pack (sequences of two to four steps, ``follows``, ``unless``, step aggregates)
    and of the runs pack (a repeated step first, in the middle and last, an eight-step sequence)."""
    watched = _run_watched(PLANS[pack], records, chunk)
    assert not watched.refused, watched.refused[:5]


@pytest.fixture(scope="module")
def carried_plan(tmp_path_factory):
    return compile_pack(load_pack(make_pack(tmp_path_factory.mktemp("carried"), CYCLE_RULES)), "CN")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(records=_payments(), chunk=st.sampled_from([1, 5, 1000]))
def test_no_join_of_a_carried_chain_is_refused_on_its_last_operand(carried_plan, records, chunk):
    """Unsharded rules of three and four steps on carried links (tests/test_stream.py): middle steps wait for
    the next step and are sent late, so their positions are refused often, on the operand before the last."""
    watched = _run_watched(carried_plan, records, chunk)
    assert not watched.refused, watched.refused[:5]


def test_a_repeated_last_step_refused_by_its_run_start_is_not_on_the_last_operand():
    """R-RUN-LAST: money comes into M1 while a run of payments out of M1 has started. The run's trigger joins
    the inflow's fact with a run start before it, which its ``q0`` operand refuses: that operand is not last,
    and the chain is not made."""
    def pay(i: int, minute: int, payer: str, payee: str, amount: float = 50) -> dict:
        return {"stream": "payment", "ts": f"2026-03-01T09:{minute:02d}:00+00:00", "payer_account": payer,
                "payee_account": payee, "payer_phone": "+8613800000001", "amount": amount, "channel": "app",
                "currency": "CNY", "device_id": "D1", "id": f"p{i}"}

    records = [pay(1, 0, "M1", "A1"), pay(2, 0, "M1", "B9"), pay(3, 0, "A1", "M1", 100), pay(4, 3, "M1", "A2")]
    plan = compile_pack(load_pack(PACKS / "runs"), "CN", {"R-RUN-LAST"})
    watched = _run_watched(plan, records, 1)
    assert watched.asserts == 2  # the inflow's fact, then the trigger that its run start keeps from joining it
    assert not watched.refused
    (rule,) = StreamExecutor(plan, lateness=0.0)._seq_rules
    last = rule.durable_rule()["all"][-1]["a1"]["$and"]
    assert last[-3:] == [{"$gt": {"q0": {"a0": "q"}}},
                         {"$lte": {"ts": {"$add": {"$l": {"a0": "ts"}, "$r": rule.within}}}},
                         {"$gt": {"q": {"a0": "q"}}}]
